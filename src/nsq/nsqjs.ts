/**
 * The one module that imports nsqjs. It uses nsqjs for the wire protocol
 * (framing, IDENTIFY, TLS, compression, AUTH, SUB, heartbeats) through its
 * per-connection class, and not its `Reader`: discovery, RDY and draining
 * are ours (see consumer.ts), which keeps the Reader's defects out of the
 * way (RDY remainder lost with several nsqd, a failed connection evicting a
 * healthy one, `ready` never firing with two nsqd, `close()` dropping the
 * FINs sent after it). What remains of nsqjs's defects is made harmless here:
 *
 * - a second `finish()`/`requeue()` is dropped before it reaches nsqjs,
 *   whose own guard is set a tick too late;
 * - REQ delays are whole, non-negative milliseconds (nsqd closes the
 *   connection on `REQ id 1.5`);
 * - `error` listeners are always attached (an unhandled `error` event throws);
 * - our callbacks never throw into nsqjs's socket handlers;
 * - `close()` waits for pending responses to reach the socket before
 *   ending it (nsqjs destroys the socket right after queueing CLS);
 * - TLS sends the server name (SNI) and verifies against it;
 * - with TLS asked for, an nsqd that does not take it up is an error, not
 *   a silent fallback to plaintext (before AUTH can send the secret).
 *
 * Importing `lib/nsqdconnection.js` directly also keeps nsqjs's lookupd
 * client (node-fetch, and with it the deprecated `punycode` module) from
 * being loaded at all.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { NSQDConnection, WriterNSQDConnection } from "nsqjs/lib/nsqdconnection.js";
import nsqjsVersion from "nsqjs/lib/version.js";
import wire from "nsqjs/lib/wire.js";
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { formatHostPort } from "../config/address.ts";
import { VERSION } from "../version.ts";

/** The nsqjs version in use, for `nsqworker version`. */
export const NSQJS_VERSION: string = nsqjsVersion;

/** TLS material, already read from disk. */
export interface TlsOptions {
  readonly ca: Uint8Array | null;
  readonly cert: Uint8Array | null;
  readonly key: Uint8Array | null;
  readonly insecureSkipVerify: boolean;
}

/** How to reach and negotiate with one nsqd. */
export interface ConnectionOptions {
  readonly authSecret: string | null;
  readonly tls: TlsOptions | null;
  readonly compression: "none" | "deflate" | "snappy";
  /** Asked of nsqd in IDENTIFY; nsqd sends a heartbeat this often when idle. */
  readonly heartbeatIntervalMs: number;
  /** A connection that hears nothing (not even a heartbeat) this long is dead. */
  readonly idleTimeoutMs: number;
  readonly clientId?: string;
  /** How long nsqd may buffer what it sends us; null leaves nsqd's default. */
  readonly outputBufferTimeoutMs?: number | null;
  readonly userAgent?: string;
}

/** What a reader connection reports. Callbacks are isolated: a throw is reported, not propagated. */
export interface ReaderEvents {
  /** SUB succeeded: the connection can be given RDY. */
  ready(): void;
  message(message: NsqMessage): void;
  /** A delivered message got its FIN or REQ (or was given up with the connection). */
  responded(message: NsqMessage): void;
  /** The connection is gone (once). `error` is the cause when there was one. */
  closed(error: Error | null): void;
  /** A protocol or socket error; fatal ones are followed by `closed`. */
  error(error: Error): void;
}

type State = "connecting" | "ready" | "draining" | "closing" | "closed";

/**
 * nsqjs's connection with its TLS start fixed to send the server name, so
 * that certificate verification checks the host we meant and SNI works.
 */
function withServerName(base: any): any {
  return class extends base {
    startTLS(callback?: () => void): void {
      for (const event of ["data", "error", "close"]) this.conn.removeAllListeners(event);
      const host: string = this.nsqdHost;
      const socket = tlsConnect({
        socket: this.conn,
        // Without `host`, node:tls checks the certificate against "localhost"
        // whenever there is no servername, which is the case for an IP.
        host,
        servername: isIP(host) === 0 ? host : undefined,
        rejectUnauthorized: this.config.tlsVerification,
        ca: this.config.ca ?? undefined,
        key: this.config.key ?? undefined,
        cert: this.config.cert ?? undefined,
      }, () => {
        this.conn = socket;
        callback?.();
      });
      this.outWriter = socket;
      this.registerStreamListeners(socket);
    }

    startCompression(inflater: any, deflater: any): void {
      // The socket's end ends the inflater mid-stream, which zlib reports as
      // "unexpected end of file"; unheard, that error would crash the process.
      const onError = (error: unknown) => this.statemachine.goto("ERROR", asError(error));
      inflater.on("error", onError);
      deflater.on("error", onError);
      super.startCompression(inflater, deflater);
    }
  };
}

/**
 * The host name nsqd shows for our connections. nsqjs reads `os.hostname()`,
 * which needs `--allow-sys=hostname`; without it IDENTIFY throws inside the
 * socket's connect callback and the connection hangs without a word. The
 * name is only informational, so it is read only when permitted.
 */
function hostName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? Deno.hostname() : "nsqworker";
}

/**
 * IDENTIFY as nsqworker, with the host name from {@link hostName}, and send
 * AUTH only when nsqd asks for it: nsqjs sends it whenever a secret is set,
 * and an nsqd without auth answers E_AUTH_DISABLED and closes the connection.
 */
function withIdentity(base: any, userAgent: string): any {
  return class extends base {
    constructor(...args: unknown[]) {
      super(...args);
      const machine = this.statemachine;
      // nsqjs goes on in plaintext when nsqd does not take up TLS; with TLS
      // asked for, that is a downgrade (and AUTH would send the secret in
      // clear), so the connection fails before anything else is sent.
      const onIdentify = machine.states.IDENTIFY_RESPONSE.response;
      machine.states.IDENTIFY_RESPONSE.response = (data: Buffer) => {
        if (this.config.tls && !negotiatesTls(data)) {
          const nsqd = formatHostPort({ host: this.nsqdHost, port: this.nsqdPort });
          return machine.goto(
            "ERROR",
            new Error(
              `nsq.tls is set but nsqd ${nsqd} did not negotiate TLS (its IDENTIFY answer has no tls_v1: true); refusing to continue in plaintext`,
            ),
          );
        }
        return onIdentify(data);
      };
      const authenticate = machine.states.AUTH.Enter;
      machine.states.AUTH.Enter = () =>
        machine.identifyResponse?.auth_required
          ? authenticate()
          : machine.goto(machine.afterIdentify());
    }

    /**
     * The raw payload: NsqMessage reads it and answers through `write`, so
     * nsqjs's Message (an EventEmitter, a timer and a tick per message) is
     * never made.
     */
    createMessage(payload: Buffer): Buffer {
      return payload;
    }

    /**
     * Queues what is written and writes it in one piece once per turn of the
     * event loop: a socket write per FIN was a fifth of the per-message cost.
     */
    write(data: Buffer | string): void {
      if (this.pendingWrites === undefined) {
        this.pendingWrites = [data];
        setImmediate(() => this.flushWrites());
      } else {
        this.pendingWrites.push(data);
      }
    }

    /** Writes what `write` queued (also before the socket is ended). */
    flushWrites(): void {
      const chunks: (Buffer | string)[] | undefined = this.pendingWrites;
      this.pendingWrites = undefined;
      const out = this.outWriter;
      if (chunks === undefined || !out || out.destroyed || out.writableEnded) return;
      // FIN/REQ/TOUCH come as text: one string, one Buffer, whatever their number.
      out.write(
        chunks.every((chunk) => typeof chunk === "string")
          ? Buffer.from(chunks.join(""))
          : Buffer.concat(
            chunks.map((chunk) => typeof chunk === "string" ? Buffer.from(chunk) : chunk),
          ),
      );
    }

    identify(): Record<string, unknown> {
      const config = this.config;
      const longName = hostName();
      const shortName = longName.split(".")[0];
      const body: Record<string, unknown> = {
        client_id: config.clientId || shortName,
        hostname: longName,
        feature_negotiation: true,
        heartbeat_interval: config.heartbeatInterval * 1000,
        deflate: config.deflate,
        deflate_level: config.deflateLevel,
        snappy: config.snappy,
        tls_v1: config.tls,
        user_agent: userAgent,
      };
      // Unset, nsqd's own defaults apply.
      if (config.messageTimeout !== null) body.msg_timeout = config.messageTimeout;
      if (config.outputBufferTimeout !== null) {
        body.output_buffer_timeout = config.outputBufferTimeout;
      }
      return body;
    }
  };
}

/** Whether nsqd's answer to IDENTIFY takes up TLS (a bare `OK` is an nsqd without feature negotiation). */
function negotiatesTls(data: Buffer): boolean {
  try {
    return JSON.parse(data.toString())?.tls_v1 === true;
  } catch {
    return false;
  }
}

const USER_AGENT = `nsqworker/${VERSION} nsqjs/${nsqjsVersion}`;
const ReaderBase = withIdentity(withServerName(NSQDConnection), USER_AGENT);
const WriterBase = withIdentity(withServerName(WriterNSQDConnection), USER_AGENT);

function nsqjsOptions(options: ConnectionOptions): Record<string, unknown> {
  const tls = options.tls;
  const asBuffer = (bytes: Uint8Array | null) => bytes === null ? null : Buffer.from(bytes);
  return {
    authSecret: options.authSecret,
    clientId: options.clientId ?? null,
    outputBufferTimeout: options.outputBufferTimeoutMs ?? null,
    deflate: options.compression === "deflate",
    snappy: options.compression === "snappy",
    heartbeatInterval: Math.max(1, Math.round(options.heartbeatIntervalMs / 1000)),
    idleTimeout: Math.max(1, Math.round(options.idleTimeoutMs / 1000)),
    tls: tls !== null,
    tlsVerification: tls === null || !tls.insecureSkipVerify,
    ca: asBuffer(tls?.ca ?? null),
    cert: asBuffer(tls?.cert ?? null),
    key: asBuffer(tls?.key ?? null),
  };
}

function report(events: { error(error: Error): void }, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    try {
      events.error(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // The reporter itself failed; there is nobody left to tell.
    }
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * Ends the socket once what was written before has been flushed, and waits
 * for it to close; destroys it after `timeoutMs`.
 */
function endGracefully(conn: any, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      conn.removeListener("closed", done);
      destroyConnection(conn);
      resolve();
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    conn.once("closed", done);
    // Responses wait in our write queue for the next turn of the event loop:
    // write them now; `end()` then sends FIN only after the socket's buffer.
    try {
      conn.flushWrites();
      conn.outWriter.end();
    } catch {
      destroyConnection(conn);
    }
  });
}

/** nsqjs opens its socket a tick after `connect()`; before that there is nothing to destroy. */
function destroyConnection(conn: any): void {
  if (conn.conn) {
    conn.statemachine.goto("CLOSED");
    conn.destroy();
  } else {
    setTimeout(() => destroyConnection(conn), 0);
  }
}

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
  #conn: any;
  #events: ReaderEvents;
  #state: State = "connecting";
  #rdy = 0;
  #inFlight = 0;
  #lastError: Error | null = null;

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
    const conn = new ReaderBase(host, port, topic, channel, nsqjsOptions(options));
    this.#conn = conn;
    // nsqjs ignores CLOSE_WAIT, the answer to CLS after which nsqd sends no
    // more messages; draining needs to know when it came.
    const states = conn.statemachine.states;
    const onResponse = states.READY_RECV.response;
    states.READY_RECV.response = (data: Buffer) => {
      if (data.length === 10 && data.toString() === "CLOSE_WAIT") conn.emit("close_wait");
      else onResponse(data);
    };
    // nsqjs checks the names only when it sends SUB, and throws inside the
    // socket's data handler, which would crash the process.
    const subscribe = states.SUBSCRIBE.Enter;
    states.SUBSCRIBE.Enter = () => {
      try {
        subscribe();
      } catch (error) {
        conn.statemachine.goto("ERROR", asError(error));
      }
    };
    conn.on("ready", () => {
      this.#state = "ready";
      report(events, () => events.ready());
    });
    conn.on("message", (bytes: Buffer) => {
      const message = new NsqMessage(bytes, this);
      this.#inFlight++;
      if (this.#state === "ready") report(events, () => events.message(message));
      else message.requeue(0); // sent before nsqd saw our CLS: hand it straight back
    });
    const onError = (error: unknown) => {
      // nsqjs reports a socket error twice: as `error` on its way to CLOSED,
      // then as `connection_error`.
      if (this.#state === "closed") return;
      this.#lastError = asError(error);
      report(events, () => events.error(this.#lastError!));
    };
    conn.on("error", onError);
    conn.on("connection_error", onError);
    conn.on("closed", () => {
      // nsqjs clears its 5 s IDENTIFY timer only when IDENTIFY is answered.
      conn.clearIdentifyTimeout();
      if (this.#state === "closed") return;
      this.#state = "closed";
      this.#rdy = 0;
      report(events, () => events.closed(this.#lastError));
    });
  }

  /** nsqd's message timeout for this connection (from IDENTIFY), in ms. */
  get msgTimeoutMs(): number {
    return this.#conn.msgTimeout || 60_000;
  }

  /** What nsqd answered to IDENTIFY (its settings for this connection); null before. */
  get negotiated(): Readonly<Record<string, unknown>> | null {
    return this.#conn.statemachine?.identifyResponse ?? null;
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

  /** Messages delivered on this connection and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Called by a message when it is answered; true when the answer can
   * still reach nsqd.
   */
  answered(message: NsqMessage): boolean {
    this.#inFlight--;
    report(this.#events, () => this.#events.responded(message));
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
   */
  drain(timeoutMs = 2000): Promise<void> {
    if (this.#state !== "ready") return Promise.resolve();
    this.setRdy(0);
    this.#state = "draining";
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
      conn.write(wire.close());
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
    await endGracefully(this.#conn, timeoutMs);
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (this.#state === "closed") return;
    this.#state = "closing";
    destroyConnection(this.#conn);
  }
}

/**
 * The longest REQ delay nsqd can take: it reads digits only (no "1e+21") into
 * int64 nanoseconds, and clamps what it gets to its --max-req-timeout.
 */
const MAX_REQ_DELAY_MS = 9_223_372_036_854;

/**
 * One delivery. Exactly one of `finish()`/`requeue()` takes effect; later
 * calls return false and send nothing.
 */
export class NsqMessage {
  readonly id: string;
  readonly attempts: number;
  /** When nsqd received the message, in ms since the epoch. */
  readonly timestamp: number;
  readonly body: Uint8Array;
  #connection: ReaderConnection;
  #responded = false;

  /** `bytes` is the payload of a message frame. */
  constructor(bytes: Buffer, connection: ReaderConnection) {
    this.#connection = connection;
    this.timestamp = Number(bytes.readBigInt64BE(0) / 1_000_000n);
    this.attempts = bytes.readUInt16BE(8);
    this.id = bytes.toString("latin1", 10, 26);
    this.body = bytes.subarray(26);
  }

  /** The connection's message timeout, in ms. */
  get msgTimeoutMs(): number {
    return this.#connection.msgTimeoutMs;
  }

  /** The dedupe scope of `id`; see {@linkcode ReaderConnection.idScope}. */
  get idScope(): string {
    return this.#connection.idScope;
  }

  /** The nsqd this message came from (`host:port`). */
  get nsqdAddress(): string {
    return this.#connection.address;
  }

  /** True once FIN or REQ was sent (or the connection is gone). */
  get responded(): boolean {
    return this.#responded;
  }

  /** FIN. False when a response was already given or the connection is gone. */
  finish(): boolean {
    if (!this.#claimResponse()) return false;
    this.#connection.send(`FIN ${this.id}\n`);
    return true;
  }

  /** REQ after `delayMs`, rounded to whole milliseconds. Never backs off the reader. */
  requeue(delayMs: number): boolean {
    if (!this.#claimResponse()) return false;
    const delay = Number.isNaN(delayMs)
      ? 0
      : Math.min(MAX_REQ_DELAY_MS, Math.max(0, Math.round(delayMs)));
    this.#connection.send(`REQ ${this.id} ${delay}\n`);
    return true;
  }

  /** TOUCH: resets nsqd's timeout for this message while it is being handled. */
  touch(): void {
    if (this.#responded || !this.#connection.canRespond) return;
    this.#connection.send(`TOUCH ${this.id}\n`);
  }

  #claimResponse(): boolean {
    if (this.#responded) return false;
    this.#responded = true;
    return this.#connection.answered(this);
  }
}

/** What a publishing connection reports. */
export interface WriterEvents {
  closed(error: Error | null): void;
  error(error: Error): void;
}

/** A publishing connection to one nsqd (PUB, MPUB, DPUB). */
export class WriterConnection {
  readonly address: string;
  /** Resolves once IDENTIFY (and TLS/AUTH) are done; rejects if the connection closes first. */
  readonly ready: Promise<void>;
  #conn: any;
  #closed = false;

  constructor(host: string, port: number, options: ConnectionOptions, events: WriterEvents) {
    this.address = formatHostPort({ host, port });
    const conn = new WriterBase(host, port, nsqjsOptions(options));
    this.#conn = conn;
    let lastError: Error | null = null;
    this.ready = new Promise((resolve, reject) => {
      conn.on("ready", () => resolve());
      const onError = (error: unknown) => {
        if (this.#closed) return; // the same socket error again, as `connection_error`
        lastError = asError(error);
        report(events, () => events.error(lastError!));
      };
      conn.on("error", onError);
      conn.on("connection_error", onError);
      conn.on("closed", () => {
        conn.clearIdentifyTimeout();
        this.#closed = true;
        reject(lastError ?? new Error("connection closed"));
        report(events, () => events.closed(lastError));
      });
    });
    // A connection that never became ready is reported through `closed`.
    this.ready.catch(() => {});
    conn.connect();
  }

  /** True once the connection is gone. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Publishes `bodies` to `topic`: PUB for one, MPUB for several, DPUB for
   * one with `deferMs` > 0. Resolves when nsqd answers OK.
   */
  publish(topic: string, bodies: readonly Uint8Array[], deferMs = 0): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("connection closed"));
    const buffers = bodies.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const delay = Math.min(MAX_REQ_DELAY_MS, Math.max(0, Math.round(deferMs || 0)));
    return new Promise((resolve, reject) => {
      try {
        this.#conn.produceMessages(topic, buffers, delay, (error: unknown) => {
          if (error) reject(asError(error));
          else resolve();
        });
      } catch (error) {
        reject(asError(error));
      }
    });
  }

  /** Closes once what was published has been flushed. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    await endGracefully(this.#conn, timeoutMs);
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (this.#closed) return;
    destroyConnection(this.#conn);
  }
}
