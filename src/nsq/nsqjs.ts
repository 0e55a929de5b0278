/**
 * The one module that imports nsqjs. It uses nsqjs 0.13.0 for the wire
 * protocol (framing, IDENTIFY, TLS, compression, AUTH, SUB, heartbeats)
 * through its per-connection class, and not its `Reader`: discovery,
 * reconnection, RDY and draining are ours (discovery.ts, consumer.ts),
 * which keeps the Reader's defects out of the way (RDY remainder lost with
 * several nsqd, a failed connection evicting a healthy one, `ready` never
 * firing with two nsqd, `close()` dropping the FINs sent after it).
 *
 * What remains of nsqjs's defects, and where each is made harmless (the
 * patches are in nsqjs/, one file each):
 *
 * - a second `finish()`/`requeue()` is dropped before it reaches nsqjs,
 *   whose own guard is set a tick too late (nsq_message.ts);
 * - REQ delays are whole, non-negative milliseconds (nsqd closes the
 *   connection on `REQ id 1.5`) (nsq_message.ts);
 * - `error` listeners are always attached (an unhandled `error` event
 *   throws) (reader_connection.ts, writer_connection.ts);
 * - our callbacks never throw into nsqjs's socket handlers (nsqjs/guard.ts);
 * - `close()` waits for pending responses to reach the socket before
 *   ending it (nsqjs destroys the socket right after queueing CLS), and the
 *   5 s IDENTIFY timer is cleared when the connection closes (nsqjs clears
 *   it only when IDENTIFY is answered) (nsqjs/orderly_end.ts);
 * - TLS sends the server name (SNI) and verifies against it, and with TLS
 *   asked for, an nsqd that does not take it up is an error, not a silent
 *   fallback to plaintext (before AUTH can send the secret) (nsqjs/tls.ts);
 * - AUTH is sent only when nsqd asks for it (nsqjs sends it whenever a
 *   secret is set; an nsqd without auth then closes the connection)
 *   (nsqjs/auth_when_required.ts);
 * - IDENTIFY reads the host name only when permitted (without
 *   `--allow-sys=hostname` nsqjs's IDENTIFY throws and the connection hangs
 *   without a word) (nsqjs/identify.ts);
 * - the error a compression stream reports when the socket ends it
 *   mid-stream fails the connection instead of crashing the process
 *   (nsqjs/compression_errors.ts);
 * - CLS's answer, CLOSE_WAIT, is reported (nsqjs ignores it)
 *   (nsqjs/drain.ts);
 * - an invalid topic or channel name closes the connection instead of
 *   throwing inside the socket's data handler (nsqjs/subscribe_errors.ts);
 * - a connection closed by its idle timeout says so (event
 *   `idle_timeout`); nsqjs closes it like any other end, without a reason
 *   (nsqjs/idle_reason.ts).
 *
 * Beside the defects, two costs: frames are cut in one pass per socket read
 * and a message stays its raw payload, with no nsqjs Message made
 * (nsqjs/frame_parser.ts); responses are written once per turn of the
 * event loop, not one socket write each (nsqjs/write_queue.ts).
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
import type { Buffer } from "node:buffer";
import { VERSION } from "../version.ts";
import type { ConnectionOptions } from "./connection_options.ts";
import { withAuthWhenRequired } from "./nsqjs/auth_when_required.ts";
import { withCompressionErrors } from "./nsqjs/compression_errors.ts";
import { withDrain } from "./nsqjs/drain.ts";
import { withFrameParser } from "./nsqjs/frame_parser.ts";
import { withIdentify } from "./nsqjs/identify.ts";
import { withIdleReason } from "./nsqjs/idle_reason.ts";
import { nsqjsOptions } from "./nsqjs/nsqjs_options.ts";
import { withOrderlyEnd } from "./nsqjs/orderly_end.ts";
import { withSubscribeErrors } from "./nsqjs/subscribe_errors.ts";
import { withTls } from "./nsqjs/tls.ts";
import { withWriteQueue } from "./nsqjs/write_queue.ts";

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

/** A subclass of an nsqjs connection class with one patch. */
type Patch = (base: any) => any;

const USER_AGENT = `nsqworker/${VERSION} nsqjs/${NSQJS_VERSION}`;

/** The patches of both connections, innermost first. */
const PATCHES: readonly Patch[] = [
  withCompressionErrors,
  withTls,
  withAuthWhenRequired,
  (base) => withIdentify(base, USER_AGENT),
  withWriteQueue,
  withFrameParser,
  // Flushes the write queue before the socket ends.
  withOrderlyEnd,
  withIdleReason,
];

const ReaderBase = patched(NSQDConnection, [...PATCHES, withDrain, withSubscribeErrors]);
const WriterBase = patched(WriterNSQDConnection, PATCHES);

function patched(base: any, patches: readonly Patch[]): any {
  return patches.reduce((patchedBase, patch) => patch(patchedBase), base);
}
