/**
 * Test harness that runs a real `redis-server` on a free loopback port with a
 * temporary directory, and can stop, kill, pause and restart it on the same
 * port, so that tests can take redis away from a running daemon and bring
 * it back.
 *
 * ```ts
 * Deno.test("the store recovers when redis returns", async () => {
 *   await using redis = await startRedis();
 *   // ... a RedisStore on redis.url ...
 *   await redis.kill();
 *   await redis.start();
 * });
 * ```
 *
 * @module
 */

import { trackChild } from "./children.ts";
import { freePort } from "./free_port.ts";
import { redisServerBin } from "./redis_server_bin.ts";

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_LINES = 30;

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /** Sets `requirepass`; `url` then carries it. */
  readonly password?: string;
  /**
   * Keeps data across stop/kill and start (an append-only file, fsync'd at
   * every write). Default false: a restarted server is empty.
   */
  readonly persistence?: boolean;
  /** Serves TLS only (`--port 0 --tls-port PORT`) with these PEM files. */
  readonly tls?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly caFile: string;
    /** Whether clients must present a certificate signed by `caFile` (mutual TLS). */
    readonly authClients: boolean;
  };
  /** More redis-server flags, e.g. `["--cluster-enabled", "yes"]`. */
  readonly args?: readonly string[];
}

/** A running (or stopped) redis-server of one test. */
export interface RedisServer extends AsyncDisposable {
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:PORT/0`. */
  readonly url: string;
  /** Its working directory (removed by `close()`). */
  readonly dir: string;
  /** Whether the process is alive (paused counts as alive). */
  readonly running: boolean;
  /** SIGTERM, and waits for the exit. No-op when stopped. */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit. No-op when stopped. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections but answers nothing until {@linkcode resume}. */
  pause(): void;
  /** SIGCONT after {@linkcode pause}. */
  resume(): void;
  /** Starts it again on the same port and directory, and resolves once it answers PING. */
  start(): Promise<void>;
  /**
   * Counts, from now on, the lines redis logs that contain `text` (e.g. the
   * handshakes it refused); read the count with the returned function.
   */
  countLogged(text: string): () => number;
  /** Sends one command (inline, no quoting) and returns redis's reply line(s) as text. */
  command(...args: string[]): Promise<string>;
  /** Kills the server and removes its directory; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts redis-server on a free loopback port, in a new temporary directory,
 * and resolves once it answers PING.
 *
 * @example
 * ```ts
 * await using redis = await startRedis({ password: "s3cret" });
 * redis.url; // "redis://:s3cret@127.0.0.1:40123/0"
 * ```
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = await redisServerBin();
  const dir = await Deno.makeTempDir({ prefix: "nsqworker_redis_" });
  const server = new Server(bin, dir, options);
  try {
    await server.start();
  } catch (error) {
    await server.close().catch(() => {/* the startup error is the one worth reporting */});
    throw error;
  }
  return server;
}

class Server implements RedisServer {
  #child: Deno.ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #alive = false;
  #port = 0;
  #output: string[] = [];
  readonly #counted = new Map<string, number>();
  #closing: Promise<void> | undefined;

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly options: StartRedisOptions,
  ) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const auth = this.options.password === undefined
      ? ""
      : `:${encodeURIComponent(this.options.password)}@`;
    return `${this.options.tls ? "rediss" : "redis"}://${auth}${HOST}:${this.#port}/0`;
  }

  get running(): boolean {
    return this.#alive;
  }

  async start(): Promise<void> {
    if (this.#alive) throw new Error(`Cannot start redis as it already runs on port ${this.#port}`);
    const deadline = performance.now() + START_TIMEOUT_MS;
    const fixedPort = this.#port !== 0;
    for (;;) {
      if (!fixedPort) this.#port = freePort();
      try {
        await this.#launch();
        return;
      } catch (error) {
        // A free port may be taken before redis binds it; a restart may wait for its old one.
        const portTaken = this.#output.some((line) => line.includes("Address already in use"));
        if (!portTaken || performance.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, fixedPort ? 100 : 0));
      }
    }
  }

  async #launch(): Promise<void> {
    this.#output = [];
    const persistence = this.options.persistence
      ? ["--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"];
    const password = this.options.password === undefined
      ? []
      : ["--requirepass", this.options.password];
    const tls = this.options.tls;
    const port = tls === undefined ? ["--port", String(this.#port)] : [
      "--port",
      "0",
      "--tls-port",
      String(this.#port),
      "--tls-cert-file",
      tls.certFile,
      "--tls-key-file",
      tls.keyFile,
      "--tls-ca-cert-file",
      tls.caFile,
      "--tls-auth-clients",
      tls.authClients ? "yes" : "no",
    ];
    const child = new Deno.Command(this.bin, {
      args: [
        "--bind",
        HOST,
        ...port,
        "--dir",
        this.dir,
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        "",
        ...persistence,
        ...password,
        ...(this.options.args ?? []),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#alive = true;
    trackChild(child);
    const status = child.status.then(() => {
      this.#alive = false;
    });
    this.#exited = Promise.all([status, this.#drain(child.stdout), this.#drain(child.stderr)])
      .then(() => {});
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (!(await this.#answers())) {
      if (!this.#alive || performance.now() > deadline) {
        await this.#end("SIGKILL");
        throw new Error(
          `Cannot start redis-server on port ${this.#port}\n--- redis output ---\n` +
            `${this.#output.join("\n")}\n--- end of redis output ---`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Whether the server answers PING (NOAUTH counts: it is up); over TLS, whether it said it is ready. */
  async #answers(): Promise<boolean> {
    if (this.options.tls) {
      return this.#output.some((line) => line.includes("Ready to accept connections"));
    }
    try {
      const reply = await this.#roundTrip("PING\r\n", 1_000);
      return reply.startsWith("+PONG") || reply.startsWith("-NOAUTH");
    } catch {
      return false;
    }
  }

  async command(...args: string[]): Promise<string> {
    const auth = this.options.password === undefined ? "" : `AUTH ${this.options.password}\r\n`;
    const reply = await this.#roundTrip(`${auth}${args.join(" ")}\r\n`, 5_000);
    return auth === "" ? reply : reply.replace(/^\+OK\r\n/, "");
  }

  /** Writes `text`, reads until the server has been quiet briefly, and returns what came. */
  async #roundTrip(text: string, timeoutMs: number): Promise<string> {
    const conn = await Deno.connect({ hostname: HOST, port: this.#port });
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }, timeoutMs);
    try {
      await conn.write(new TextEncoder().encode(`${text}QUIT\r\n`));
      let reply = "";
      const buffer = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        reply += new TextDecoder().decode(buffer.subarray(0, n));
      }
      // QUIT's own +OK is always the last line.
      return reply.replace(/\+OK\r\n$/, "");
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // The timer closed it.
      }
    }
  }

  countLogged(text: string): () => number {
    this.#counted.set(text, 0);
    return () => this.#counted.get(text) ?? 0;
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = text.split("\n").filter((line) => line !== "");
      for (const [wanted, count] of this.#counted) {
        this.#counted.set(wanted, count + lines.filter((line) => line.includes(wanted)).length);
      }
      this.#output.push(...lines);
      if (this.#output.length > OUTPUT_TAIL_LINES) {
        this.#output.splice(0, this.#output.length - OUTPUT_TAIL_LINES);
      }
    }
  }

  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    if (this.#alive) {
      try {
        child.kill(signal);
        // A paused server only acts on SIGTERM once it runs again.
        if (signal === "SIGTERM") child.kill("SIGCONT");
      } catch {
        // It exited meanwhile.
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), STOP_GRACE_MS)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill("SIGKILL");
      await this.#exited;
    }
    this.#child = null;
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      await this.#end("SIGKILL");
      await Deno.remove(this.dir, { recursive: true });
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
