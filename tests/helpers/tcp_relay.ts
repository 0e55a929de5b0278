/**
 * A TCP relay on a free loopback port in front of a real server (nsqd),
 * for what a test must see or hold on the wire: it counts a pattern in what
 * the server sends, and can hold what the client sends, so that the server
 * reads it only when the test says (a slow link, without guessing a delay).
 *
 * ```ts
 * await using relay = startTcpRelay(nsqd.tcpPort);
 * // ... the consumer connects to relay.port ...
 * await waitFor(() => relay.seen("_heartbeat_") >= 3);
 * relay.hold();
 * relay.release();
 * ```
 *
 * @module
 */

const HOST = "127.0.0.1";

/** A running relay; closing it closes every connection through it. */
export interface TcpRelay extends AsyncDisposable {
  /** Where clients connect. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** How many times `pattern` (ASCII) has passed from the server to a client. */
  seen(pattern: string): number;
  /** From now on, what clients send waits in the relay instead of reaching the server. */
  hold(): void;
  /** Sends what was held, and lets what follows through. */
  release(): void;
  close(): Promise<void>;
}

/** Starts a relay to `upstreamPort` on loopback. */
export function startTcpRelay(upstreamPort: number): TcpRelay {
  return new Relay(upstreamPort);
}

class Relay implements TcpRelay {
  readonly #listener: Deno.Listener;
  readonly #upstreamPort: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  /** What the server sent, as Latin-1 text (patterns are ASCII). */
  #downstream = "";
  #held: PromiseWithResolvers<void> | null = null;
  #accepted = 0;
  #closing: Promise<void> | undefined;

  constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.#listener = Deno.listen({ hostname: HOST, port: 0 });
    this.#track(this.#accept());
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  get accepted(): number {
    return this.#accepted;
  }

  seen(pattern: string): number {
    return this.#downstream.split(pattern).length - 1;
  }

  hold(): void {
    this.#held ??= Promise.withResolvers();
  }

  release(): void {
    this.#held?.resolve();
    this.#held = null;
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        this.#accepted++;
        this.#track(this.#connect(client));
      }
    } catch {
      // The listener was closed.
    }
  }

  async #connect(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: HOST, port: this.#upstreamPort });
    } catch {
      this.#end(client);
      return;
    }
    this.#conns.add(server);
    await Promise.all([this.#pipe(client, server, true), this.#pipe(server, client, false)]);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, upstream: boolean): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        let chunk = buffer.subarray(0, n);
        if (upstream) {
          while (this.#held !== null) await this.#held.promise;
        } else {
          for (const byte of chunk) this.#downstream += String.fromCharCode(byte);
        }
        while (chunk.length > 0) chunk = chunk.subarray(await to.write(chunk));
      }
    } catch {
      // Either side went away: the other is closed below.
    }
    this.#end(from);
    this.#end(to);
  }

  #end(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.release();
      this.#listener.close();
      for (const conn of [...this.#conns]) this.#end(conn);
      while (this.#tasks.size > 0) await Promise.all(this.#tasks);
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
