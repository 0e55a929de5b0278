/**
 * One nsqd or nsqlookupd process of the harness, on loopback: started on port
 * 0, then stopped, killed, suspended and restarted on the ports it got.
 *
 * @module
 */
import { waitFor } from "../wait_for.ts";
import { ChildProc } from "./child_proc.ts";
import { ping } from "./nsqd_http.ts";

/** The loopback address every process of the harness listens on. */
export const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;

/** One running (or stopped) nsqd of an {@linkcode NsqCluster}. */
export interface Nsqd {
  /** `127.0.0.1:PORT` for NSQ TCP clients. */
  readonly tcpAddress: string;
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly httpUrl: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  /** Its `--data-path`; kept across {@linkcode Nsqd.stop} and {@linkcode Nsqd.start}. */
  readonly dataDir: string;
  /** Whether the process is alive. */
  readonly running: boolean;
  /** Sends SIGTERM and waits for exit; nsqd then persists in-memory messages. No-op when stopped. */
  stop(): Promise<void>;
  /** Sends SIGKILL and waits for exit: in-memory messages are lost. No-op when stopped. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  start(): Promise<void>;
  /**
   * SIGSTOP: it stays registered with nsqlookupd and its port accepts
   * connections, but it answers nothing, like a host that hangs.
   */
  suspend(): void;
  /** SIGCONT after {@linkcode Nsqd.suspend}. */
  resume(): void;
}

/** The nsqlookupd of an {@linkcode NsqCluster}. */
export interface NsqLookupd {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly httpUrl: string;
  /** `127.0.0.1:PORT`, which every nsqd of the cluster registers with. */
  readonly tcpAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly running: boolean;
  /** Sends SIGTERM and waits for exit. No-op when stopped. */
  stop(): Promise<void>;
  /** Sends SIGKILL and waits for exit. No-op when stopped. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same ports. It starts empty: each nsqd registers
   * again when its lookup loop reconnects (up to 15 s later).
   */
  start(): Promise<void>;
}

/** nsqd or nsqlookupd: first started on port 0, later restarted on the ports it got. */
export class NsqServer implements Nsqd, NsqLookupd {
  #proc: ChildProc | null = null;
  #starting = false;
  #tcpPort = 0;
  #httpPort = 0;

  constructor(
    readonly label: string,
    readonly bin: string,
    readonly dataDir: string,
    readonly args: (tcpPort: number, httpPort: number) => string[],
  ) {}

  get tcpPort(): number {
    return this.#tcpPort;
  }
  get httpPort(): number {
    return this.#httpPort;
  }
  get tcpAddress(): string {
    return `${HOST}:${this.#tcpPort}`;
  }
  get httpUrl(): string {
    return `http://${HOST}:${this.#httpPort}`;
  }
  get running(): boolean {
    return this.#proc !== null && this.#proc.status === null;
  }

  async start(): Promise<void> {
    if (this.#starting || this.running) {
      throw new Error(`Cannot start ${this.label} as it is already running on ${this.tcpAddress}`);
    }
    this.#starting = true;
    try {
      // It may have died on its own: collect it before reusing its ports.
      await this.#end("SIGKILL");
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (;;) {
        try {
          this.#proc = await this.#launch();
          return;
        } catch (error) {
          // A restart needs its old ports back; something else may hold one briefly.
          const portTaken = error instanceof Error &&
            error.message.includes("address already in use");
          if (!portTaken || performance.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } finally {
      this.#starting = false;
    }
  }

  async #launch(): Promise<ChildProc> {
    const proc = new ChildProc(this.label, this.bin, this.args(this.#tcpPort, this.#httpPort));
    try {
      await waitFor(() => {
        if (proc.status !== null) {
          throw new Error(`it exited with code ${proc.status.code} before listening`);
        }
        return proc.listening.has("TCP") && proc.listening.has("HTTP");
      }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 5, message: "it to listen" });
      this.#tcpPort = portOf(proc.listening.get("TCP"));
      this.#httpPort = portOf(proc.listening.get("HTTP"));
      await waitFor(() => {
        if (proc.status !== null) throw new Error(`it exited with code ${proc.status.code}`);
        return ping(this.httpUrl);
      }, {
        timeoutMs: START_TIMEOUT_MS,
        intervalMs: 10,
        message: `GET ${this.httpUrl}/ping to answer OK`,
      });
    } catch (error) {
      await proc.terminate("SIGKILL");
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot start ${this.label}: ${reason}\n${proc.describeOutput()}`, {
        cause: error,
      });
    }
    return proc;
  }

  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  suspend(): void {
    this.#proc?.signal("SIGSTOP");
  }

  resume(): void {
    this.#proc?.signal("SIGCONT");
  }

  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const proc = this.#proc;
    if (proc === null) return;
    await proc.terminate(signal);
    this.#proc = null;
  }
}

function portOf(address: string | undefined): number {
  const port = Number(address?.slice(address.lastIndexOf(":") + 1));
  if (!Number.isInteger(port) || port <= 0) {
    throw new Error(`Cannot parse a port from the logged address: current value is "${address}"`);
  }
  return port;
}
