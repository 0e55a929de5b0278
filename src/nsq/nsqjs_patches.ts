/**
 * The one module that imports nsqjs. It uses nsqjs for the wire protocol
 * (framing, IDENTIFY, TLS, compression, AUTH, SUB, heartbeats) through its
 * per-connection class, and not its `Reader`: discovery, RDY and draining
 * are ours (see consumer.ts), which keeps the Reader's defects out of the
 * way (RDY remainder lost with several nsqd, a failed connection evicting a
 * healthy one, `ready` never firing with two nsqd, `close()` dropping the
 * FINs sent after it). What remains of nsqjs's defects is made harmless here
 * and in the modules built on this one:
 *
 * - a second `finish()`/`requeue()` is dropped before it reaches nsqjs,
 *   whose own guard is set a tick too late (nsq_message.ts);
 * - REQ delays are whole, non-negative milliseconds (nsqd closes the
 *   connection on `REQ id 1.5`) (nsq_message.ts);
 * - `error` listeners are always attached (an unhandled `error` event
 *   throws) (reader_connection.ts, writer_connection.ts);
 * - our callbacks never throw into nsqjs's socket handlers ({@link guard});
 * - `close()` waits for pending responses to reach the socket before
 *   ending it (nsqjs destroys the socket right after queueing CLS);
 * - TLS sends the server name (SNI) and verifies against it;
 * - with TLS asked for, an nsqd that does not take it up is an error, not
 *   a silent fallback to plaintext (before AUTH can send the secret);
 * - CLS's answer, CLOSE_WAIT, is reported (nsqjs ignores it), and an
 *   invalid topic or channel name closes the connection instead of throwing
 *   inside the socket's data handler;
 * - the 5 s IDENTIFY timer is cleared when the connection closes (nsqjs
 *   clears it only when IDENTIFY is answered).
 * - a connection closed by its idle timeout says so (event
 *   `idle_timeout`); nsqjs closes it like any other end, without a reason.
 *
 * Beside the defects, one cost: nsqjs cuts frames by concatenating every
 * socket read onto what is left and making three Buffers and an array per
 * frame; {@link withFrameLoop} cuts them in one pass per read, with the same
 * dispatch.
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
import { asError } from "../error_text.ts";
import { VERSION } from "../version.ts";
import type { ConnectionOptions } from "./connection_options.ts";

/** The nsqjs version in use, for `nsqworker version`. */
export const NSQJS_VERSION: string = nsqjsVersion;

type Listener = (...args: never[]) => void;

/** What the reader and the writer use of a patched nsqjs connection. */
export interface NsqjsConnection {
  /** Opens the socket; `ready` or `closed` follows. */
  connect(): void;
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  /** Queues a command; everything queued is written once per turn of the event loop. */
  write(data: string): void;
  /**
   * Ends the socket once what was written before has been flushed, and
   * waits for it to close; destroys it after `timeoutMs`.
   */
  endGracefully(timeoutMs: number): Promise<void>;
  /** Drops the socket now, or as soon as there is one. */
  destroySoon(): void;
}

/** A patched nsqjs consumer connection; it also emits `close_wait`, CLS's answer. */
export interface NsqjsReader extends NsqjsConnection {
  /** nsqd's message timeout for this connection (from IDENTIFY), in ms; 0 before. */
  readonly msgTimeout: number;
  /** nsqd's largest accepted RDY; 0 before IDENTIFY. */
  readonly maxRdyCount: number;
  setRdy(count: number): void;
  /** Sends CLS. */
  requestClose(): void;
}

/** A patched nsqjs publishing connection. */
export interface NsqjsWriter extends NsqjsConnection {
  produceMessages(
    topic: string,
    bodies: Buffer[],
    deferMs: number,
    callback: (error: unknown) => void,
  ): void;
}

/** Opens nothing yet: `connect()` does. Throws when nsqjs refuses the options. */
export function createNsqjsReader(
  host: string,
  port: number,
  topic: string,
  channel: string,
  options: ConnectionOptions,
): NsqjsReader {
  return new ReaderBase(host, port, topic, channel, nsqjsOptions(options));
}

/** Opens nothing yet: `connect()` does. Throws when nsqjs refuses the options. */
export function createNsqjsWriter(
  host: string,
  port: number,
  options: ConnectionOptions,
): NsqjsWriter {
  return new WriterBase(host, port, nsqjsOptions(options));
}

/**
 * Runs one of our callbacks from inside nsqjs's socket handlers, where a
 * throw would crash the process: it is reported to `events.error` instead.
 */
export function guard(events: { error(error: Error): void }, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    try {
      events.error(asError(error));
    } catch {
      // The reporter itself failed; there is nobody left to tell.
    }
  }
}

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
const ReaderBase = withIdleReason(withDrain(
  withOrderlyEnd(withFrameLoop(withIdentity(withServerName(NSQDConnection), USER_AGENT))),
));
const WriterBase = withIdleReason(withOrderlyEnd(
  withFrameLoop(withIdentity(withServerName(WriterNSQDConnection), USER_AGENT)),
));

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

/**
 * nsqjs's `receiveData`, frame for frame the same dispatch (a response to
 * the state machine, an error to ERROR, a message to `consumeMessage`), but
 * cut in one pass over each socket read: only a frame split across reads is
 * copied, once, and a frame costs one Buffer (its payload). What follows
 * the response that turns compression on goes to the inflater (nsqjs hands
 * it over from its frame buffer, which this leaves empty).
 */
function withFrameLoop(base: any): any {
  return class extends base {
    /** The start of a frame that the next read completes. */
    partialFrame: Buffer | undefined = undefined;

    receiveData(data: Buffer): void {
      this.lastReceivedTimestamp = Date.now();
      const bytes = this.partialFrame === undefined
        ? data
        : Buffer.concat([this.partialFrame, data]);
      this.partialFrame = undefined;
      const end = bytes.length;
      let at = 0;
      while (end - at >= 8) {
        // The size counts the frame type and the payload, not itself.
        const frameEnd = at + 4 + bytes.readInt32BE(at);
        if (frameEnd > end) break;
        const type = bytes.readInt32BE(at + 4);
        const payload = bytes.subarray(at + 8, frameEnd);
        at = frameEnd;
        switch (type) {
          case wire.FRAME_TYPE_RESPONSE: {
            const inflater = this.inflater;
            this.statemachine.raise("response", payload);
            // IDENTIFY's answer turned compression on: what follows it is compressed.
            if (this.inflater !== inflater) {
              if (at < end) this.inflater.write(bytes.subarray(at));
              return;
            }
            break;
          }
          case wire.FRAME_TYPE_ERROR:
            this.statemachine.goto("ERROR", new Error(payload.toString()));
            break;
          case wire.FRAME_TYPE_MESSAGE:
            this.lastMessageTimestamp = this.lastReceivedTimestamp;
            this.statemachine.raise("consumeMessage", this.createMessage(payload));
            break;
        }
      }
      if (at < end) this.partialFrame = bytes.subarray(at);
    }
  };
}

/**
 * Closing in order: what was written goes out before the socket ends, a
 * socket not open yet is destroyed once it is, and nsqjs's IDENTIFY timer
 * does not outlive the connection.
 */
function withOrderlyEnd(base: any): any {
  return class extends base {
    constructor(...args: unknown[]) {
      super(...args);
      // nsqjs clears its 5 s IDENTIFY timer only when IDENTIFY is answered.
      this.on("closed", () => this.clearIdentifyTimeout());
    }

    endGracefully(timeoutMs: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          this.removeListener("closed", done);
          this.destroySoon();
          resolve();
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        this.once("closed", done);
        // Responses wait in our write queue for the next turn of the event loop:
        // write them now; `end()` then sends FIN only after the socket's buffer.
        try {
          this.flushWrites();
          this.outWriter.end();
        } catch {
          this.destroySoon();
        }
      });
    }

    /** nsqjs opens its socket a tick after `connect()`; before that there is nothing to destroy. */
    destroySoon(): void {
      if (this.conn) {
        this.statemachine.goto("CLOSED");
        this.destroy();
      } else {
        setTimeout(() => this.destroySoon(), 0);
      }
    }
  };
}

/**
 * Emits `idle_timeout` (with the timeout in seconds) when the socket saw no
 * data for the idle timeout, just before nsqjs closes the connection for
 * it: on a half-open link this is the only sign of the loss.
 */
function withIdleReason(base: any): any {
  return class extends base {
    registerStreamListeners(conn: any): void {
      // Registered before nsqjs's own timeout listener, which closes the connection.
      conn.on("timeout", () => this.emit("idle_timeout", this.config.idleTimeout));
      super.registerStreamListeners(conn);
    }
  };
}

/**
 * What draining a consumer connection needs: CLS, and its answer
 * CLOSE_WAIT (after which nsqd sends no more messages) as an event, which
 * nsqjs ignores. Also keeps SUB's name check from throwing inside the
 * socket's data handler, which would crash the process.
 */
function withDrain(base: any): any {
  return class extends base {
    constructor(...args: unknown[]) {
      super(...args);
      const states = this.statemachine.states;
      const onResponse = states.READY_RECV.response;
      states.READY_RECV.response = (data: Buffer) => {
        if (data.length === 10 && data.toString() === "CLOSE_WAIT") this.emit("close_wait");
        else onResponse(data);
      };
      const subscribe = states.SUBSCRIBE.Enter;
      states.SUBSCRIBE.Enter = () => {
        try {
          subscribe();
        } catch (error) {
          this.statemachine.goto("ERROR", asError(error));
        }
      };
    }

    requestClose(): void {
      this.write(wire.close());
    }
  };
}
