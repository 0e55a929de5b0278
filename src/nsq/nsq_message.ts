/**
 * One delivered message, answered through the connection that delivered it.
 *
 * @module
 */

import type { Buffer } from "node:buffer";

/**
 * The longest REQ or DPUB delay nsqd can take: it reads digits only (no
 * "1e+21") into int64 nanoseconds, and clamps what it gets to its
 * --max-req-timeout.
 */
export const MAX_REQ_DELAY_MS = 9_223_372_036_854;

/** What a message needs of the connection that delivered it. */
export interface MessageConnection {
  /** nsqd's message timeout for this connection, in ms. */
  readonly msgTimeoutMs: number;
  /** Where a message id of this connection is unique. */
  readonly idScope: string;
  /** `host:port` of the nsqd. */
  readonly address: string;
  /** Whether responses can still reach nsqd. */
  readonly canRespond: boolean;
  /** Writes a command line (FIN, REQ, TOUCH). */
  send(command: string): void;
  /** Told once per message when it is answered; true when the answer can still reach nsqd. */
  answered(message: NsqMessage): boolean;
}

/**
 * One delivery. Exactly one of `finish()`/`requeue()` takes effect; later
 * calls return false and send nothing (nsqjs's own guard is set a tick too
 * late, and nsqd closes the connection on a second answer).
 */
export class NsqMessage {
  readonly id: string;
  readonly attempts: number;
  readonly body: Uint8Array;
  #connection: MessageConnection;
  #responded = false;
  /** The frame, for the timestamp, which few read. */
  readonly #bytes: Buffer;

  /**
   * `bytes` is the payload of a message frame. Read by hand, per message: a
   * `Buffer` method call (`toString("latin1")`, `subarray`) costs several
   * times what the same work does on the plain bytes.
   */
  constructor(bytes: Buffer, connection: MessageConnection) {
    this.#connection = connection;
    this.#bytes = bytes;
    this.attempts = (bytes[8]! << 8) | bytes[9]!;
    // The 16 id bytes as latin1 (one byte, one character).
    // deno-fmt-ignore
    this.id = String.fromCharCode(
      bytes[10]!, bytes[11]!, bytes[12]!, bytes[13]!, bytes[14]!, bytes[15]!, bytes[16]!, bytes[17]!,
      bytes[18]!, bytes[19]!, bytes[20]!, bytes[21]!, bytes[22]!, bytes[23]!, bytes[24]!, bytes[25]!,
    );
    this.body = new Uint8Array(bytes.buffer, bytes.byteOffset + 26, bytes.length - 26);
  }

  /** When nsqd received the message, in ms since the epoch. */
  get timestamp(): number {
    return Number(this.#bytes.readBigInt64BE(0) / 1_000_000n);
  }

  /** The connection's message timeout, in ms. */
  get msgTimeoutMs(): number {
    return this.#connection.msgTimeoutMs;
  }

  /** The dedupe scope of `id`; see {@linkcode MessageConnection.idScope}. */
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

  /**
   * REQ after `delayMs`, rounded to whole milliseconds (nsqd closes the
   * connection on `REQ id 1.5`). Never backs off the reader.
   */
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
