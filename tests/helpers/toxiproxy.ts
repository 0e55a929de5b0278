/**
 * Test harness that runs a real Toxiproxy server (the TCP fault proxy, built
 * by tools/toxiproxy_bin.ts) on a free loopback port and drives it over its
 * HTTP API: a proxy in front of nsqd, nsqlookupd's HTTP or redis, and toxics
 * (latency, bandwidth, reset_peer, timeout…) added to and removed from it
 * while a daemon uses it.
 *
 * ```ts
 * await using toxiproxy = await startToxiproxy();
 * const proxy = await toxiproxy.proxy("nsqd", nsqd.tcpAddress);
 * // ... the daemon connects to proxy.listen ...
 * await proxy.add("lag", "latency", { latency: 200, jitter: 100 });
 * await proxy.remove("lag");
 * ```
 *
 * @module
 */

import { toxiproxyBin } from "../../tools/toxiproxy_bin.ts";
import { trackChild } from "./children.ts";
import { freePort } from "./free_port.ts";

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;
const OUTPUT_TAIL_LINES = 30;

/** The toxics of Toxiproxy v2.12 with their attributes. */
export interface ToxicAttributes {
  /** Delay in ms, ± jitter. */
  latency: { latency: number; jitter?: number };
  /** Rate limit in KB/s. */
  bandwidth: { rate: number };
  /** Closes with RST on the first data after `timeout` ms. */
  reset_peer: { timeout: number };
  /** Drops all data; with 0 never closes (a half-open connection). */
  timeout: { timeout: number };
  /** Delays the close by `delay` ms. */
  slow_close: { delay: number };
  /** Closes after `bytes`. */
  limit_data: { bytes: number };
}

/** One proxy: clients connect to `listen`, Toxiproxy connects to `upstream`. */
export interface Proxy {
  readonly name: string;
  /** `127.0.0.1:PORT`, the address to give the daemon. */
  readonly listen: string;
  readonly upstream: string;
  /**
   * Adds a toxic. `stream` is the direction the toxic acts on: "downstream"
   * (upstream → client, the default) or "upstream" (client → upstream).
   */
  add<T extends keyof ToxicAttributes>(
    name: string,
    type: T,
    attributes: ToxicAttributes[T],
    stream?: "downstream" | "upstream",
  ): Promise<void>;
  /** Removes a toxic added by {@linkcode add}. */
  remove(name: string): Promise<void>;
  /** Disabled: the listener closes and every connection through it is cut; enabled again: it listens on the same address. */
  setEnabled(enabled: boolean): Promise<void>;
}

/** A running Toxiproxy server of one test. */
export interface Toxiproxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, its API. */
  readonly apiUrl: string;
  /** Creates a proxy on a free loopback port in front of `upstream` (`host:port`). */
  proxy(name: string, upstream: string): Promise<Proxy>;
  /** Removes every toxic and enables every proxy. */
  reset(): Promise<void>;
  /** Stops the server; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts `toxiproxy-server` on a free loopback port (its default host is
 * `localhost` and port 8474, which tests running side by side would share)
 * and resolves once its API answers.
 *
 * @example
 * ```ts
 * await using toxiproxy = await startToxiproxy();
 * const proxy = await toxiproxy.proxy("redis", `127.0.0.1:${redis.port}`);
 * ```
 */
export async function startToxiproxy(): Promise<Toxiproxy> {
  const bin = await toxiproxyBin();
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    const server = new Server(bin, freePort());
    try {
      await server.launch(deadline);
      return server;
    } catch (error) {
      await server.close();
      // A free port may be taken before toxiproxy binds it.
      const portTaken = server.output.some((line) => line.includes("address already in use"));
      if (!portTaken || performance.now() > deadline) throw error;
    }
  }
}

class Server implements Toxiproxy {
  readonly output: string[] = [];
  #child: Deno.ChildProcess | null = null;
  #exited: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(readonly bin: string, readonly port: number) {}

  get apiUrl(): string {
    return `http://${HOST}:${this.port}`;
  }

  async launch(deadline: number): Promise<void> {
    const child = new Deno.Command(this.bin, {
      args: ["-host", HOST, "-port", String(this.port)],
      // Its per-connection info lines would fill the pipe for nothing.
      env: { LOG_LEVEL: "warn" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    trackChild(child);
    let alive = true;
    const status = child.status.then(() => {
      alive = false;
    });
    this.#exited = Promise.all([status, this.#drain(child.stdout), this.#drain(child.stderr)]);
    while (!(await this.#answers())) {
      if (!alive || performance.now() > deadline) {
        throw new Error(
          `Cannot start toxiproxy-server on port ${this.port}\n--- toxiproxy output ---\n` +
            `${this.output.join("\n")}\n--- end of toxiproxy output ---`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #answers(): Promise<boolean> {
    try {
      const response = await fetch(`${this.apiUrl}/version`);
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this.output.push(...text.split("\n").filter((line) => line !== ""));
      if (this.output.length > OUTPUT_TAIL_LINES) {
        this.output.splice(0, this.output.length - OUTPUT_TAIL_LINES);
      }
    }
  }

  /** Sends one API request and returns the parsed answer, throwing on an error status. */
  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.apiUrl}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(
        `Cannot ${method} ${path} on toxiproxy as it answered ${response.status}: ${text}`,
      );
    }
    return text === "" ? null : JSON.parse(text);
  }

  async proxy(name: string, upstream: string): Promise<Proxy> {
    const created = await this.api("POST", "/proxies", {
      name,
      listen: `${HOST}:0`,
      upstream,
      enabled: true,
    }) as { listen: string };
    const path = `/proxies/${encodeURIComponent(name)}`;
    return {
      name,
      listen: created.listen,
      upstream,
      add: async (toxic, type, attributes, stream = "downstream") => {
        await this.api("POST", `${path}/toxics`, {
          name: toxic,
          type,
          stream,
          toxicity: 1,
          attributes,
        });
      },
      remove: async (toxic) => {
        await this.api("DELETE", `${path}/toxics/${encodeURIComponent(toxic)}`);
      },
      setEnabled: async (enabled) => {
        await this.api("POST", path, { enabled });
      },
    };
  }

  async reset(): Promise<void> {
    await this.api("POST", "/reset");
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      try {
        this.#child?.kill("SIGKILL");
      } catch {
        // It exited already.
      }
      await this.#exited;
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
