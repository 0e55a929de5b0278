/**
 * One consumer connection to one nsqd: it reports what happens and counts
 * nothing; RDY and in-flight are the consumer's.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { formatHostPort } from "../config/address.ts";
import type { ConnectionOptions } from "./connection_options.ts";
import { NsqMessage } from "./nsq_message.ts";
import { asError } from "../error_text.ts";
import { createNsqjsReader, type NsqjsReader } from "./nsqjs.ts";
import { guard } from "./nsqjs/guard.ts";

/** What a reader connection reports. Callbacks are isolated: a throw is reported, not propagated. */
export interface ReaderEvents {
  /** SUB succeeded: the connection can be given RDY. */
  ready(): void;
  /**
   * A message delivered while ready, or while draining with `deliver` (one
   * that comes after drain() started is otherwise handed back unreported).
   */
  message(message: NsqMessage): void;
  /** A delivered message got its FIN or REQ (or was given up with the connection). */
  responded(message: NsqMessage): void;
  /** The connection is gone (once). `error` is the cause when there was one. */
  closed(error: Error | null): void;
  /** A protocol or socket error; fatal ones are followed by `closed`. */
  error(error: Error): void;
}

/** What becomes of the messages that arrive while a connection drains. */
export type DrainArrivals = "requeue" | "deliver";

type State = "connecting" | "ready" | "draining" | "closing" | "closed";

/** One consumer connection to one nsqd, for one topic and channel. */
export class ReaderConnection {
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  /**
   * `<topic>/<channel>@<host:port>`: where a message id of this connection
   * is unique (nsqd mints ids per topic from its `--node-id`, which two nsqd
   * may share). Its messages carry it by reference.
   */
  readonly idScope: string;
  #conn: NsqjsReader;
  #events: ReaderEvents;
  #state: State = "connecting";
  /** What drain() does with the messages that still arrive. */
  #arriving: DrainArrivals = "requeue";
  #rdy = 0;
  #lastError: Error | null = null;

  /** Throws when nsqjs refuses the options (snappy without its addon). */
  constructor(
    host: string,
    port: number,
    topic: string,
    channel: string,
    options: ConnectionOptions,
    events: ReaderEvents,
  ) {
    this.host = host;
    this.port = port;
    this.address = formatHostPort({ host, port });
    this.idScope = `${topic}/${channel}@${this.address}`;
    this.#events = events;
    const conn = createNsqjsReader(host, port, topic, channel, options);
    this.#conn = conn;
    conn.on("ready", () => {
      this.#state = "ready";
      guard(events, () => events.ready());
    });
    conn.on("message", (bytes: Buffer) => {
      const message = new NsqMessage(bytes, this);
      // Sent before nsqd saw our CLS: handed straight back, never delivered,
      // unless the drain takes them.
      if (this.#state !== "ready" && (this.#state !== "draining" || this.#arriving !== "deliver")) {
        return this.send(`REQ ${message.id} 0\n`);
      }
      // Not through guard(): no closure per message.
      try {
        events.message(message);
      } catch (error) {
        this.#reportError(error);
      }
    });
    const onError = (error: unknown) => {
      // nsqjs reports a socket error twice: as `error` on its way to CLOSED,
      // then as `connection_error`.
      if (this.#state === "closed") return;
      this.#lastError = asError(error);
      this.#reportError(this.#lastError);
    };
    conn.on("error", onError);
    conn.on("connection_error", onError);
    conn.on("idle_timeout", (seconds: number) => {
      if (this.#state === "closed") return;
      this.#lastError = new Error(`no data from nsqd for ${seconds} s (idle timeout)`);
    });
    conn.on("closed", () => {
      if (this.#state === "closed") return;
      this.#state = "closed";
      this.#rdy = 0;
      guard(events, () => events.closed(this.#lastError));
    });
  }

  /** nsqd's message timeout for this connection (from IDENTIFY), in ms. */
  get msgTimeoutMs(): number {
    return this.#conn.msgTimeout || 60_000;
  }

  /** nsqd's largest accepted RDY. */
  get maxRdyCount(): number {
    return this.#conn.maxRdyCount || 2500;
  }

  /** True between a successful SUB and the start of draining. */
  get isReady(): boolean {
    return this.#state === "ready";
  }

  /** True once the connection is gone. */
  get isClosed(): boolean {
    return this.#state === "closed";
  }

  /** The RDY count last sent. */
  get rdy(): number {
    return this.#rdy;
  }

  /**
   * Called by a message when it is answered; reports `responded`, and
   * returns true when the answer can still reach nsqd.
   */
  answered(message: NsqMessage): boolean {
    try {
      this.#events.responded(message);
    } catch (error) {
      this.#reportError(error);
    }
    return this.canRespond;
  }

  /** Whether responses can still reach nsqd on this connection. */
  get canRespond(): boolean {
    return this.#state === "ready" || this.#state === "draining";
  }

  /** Opens the connection; `ready` or `closed` follows. */
  connect(): void {
    this.#conn.connect();
  }

  /** Writes a command line (FIN, REQ, TOUCH) for a message of this connection. */
  send(command: string): void {
    this.#conn.write(command);
  }

  /** Sends RDY when ready and different from the last value sent. */
  setRdy(count: number): void {
    if (this.#state !== "ready") return;
    const value = Math.max(0, Math.min(Math.floor(count), this.maxRdyCount));
    if (value === this.#rdy) return;
    this.#rdy = value;
    this.#conn.setRdy(value);
  }

  /**
   * RDY 0 and CLS: nsqd stops sending. Resolves when nsqd confirms (every
   * message it sent has arrived by then and was either delivered or handed
   * back), when the connection closes, or after `timeoutMs`. Responses to
   * messages already delivered still go out until `close()`.
   *
   * The messages nsqd sent before it read RDY 0 and CLS still arrive:
   * `requeue` hands them back at once, `deliver` reports them as messages,
   * to be answered before `close()`. nsqd counted an attempt for each as it
   * sent it, so one handed back comes back with an attempt spent unhandled.
   */
  drain(timeoutMs = 2000, arriving: DrainArrivals = "requeue"): Promise<void> {
    if (this.#state !== "ready") return Promise.resolve();
    this.setRdy(0);
    this.#state = "draining";
    this.#arriving = arriving;
    const conn = this.#conn;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn.removeListener("close_wait", done);
        conn.removeListener("closed", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      conn.once("close_wait", done);
      conn.once("closed", done);
      conn.requestClose();
    });
  }

  /**
   * Ends the connection once every response already given has been written;
   * destroys the socket if nsqd does not close it within `timeoutMs`. Call
   * `drain()` and wait for in-flight messages first.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#state === "closed" || this.#state === "closing") return;
    if (this.#state === "connecting") {
      this.destroy();
      return;
    }
    this.#state = "closing";
    await this.#conn.endGracefully(timeoutMs);
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (this.#state === "closed") return;
    this.#state = "closing";
    this.#conn.destroySoon();
  }

  #reportError(error: unknown): void {
    guard(this.#events, () => this.#events.error(asError(error)));
  }
}
