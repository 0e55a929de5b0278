/**
 * The message published to a dead letter topic.
 *
 * @module
 */

import type { DeadReason } from "../runner/outcome.ts";
import { NSQD_LIMITS } from "../config/nsqd_limits.ts";

/** What {@linkcode deadLetterEnvelope} needs to know about a dead message. */
export interface DeadLetterInput {
  /** The topic on nsqd (with `topic_prefix`): replay publishes there as it is. */
  readonly topic: string;
  readonly channel: string;
  /** The worker name, e.g. `demo/pageview`. */
  readonly worker: string;
  readonly message: {
    readonly id: string;
    readonly attempts: number;
    /** When nsqd received the message, in milliseconds since the epoch. */
    readonly timestamp: number;
    readonly body: Uint8Array;
  };
  readonly reason: DeadReason;
  readonly error: string;
  /** The W3C `traceparent` of the dead letter's span, when tracing is on. */
  readonly traceparent?: string;
  /** When the message died, in milliseconds since the epoch (default: now). */
  readonly now?: number;
  /** The largest envelope nsqd takes (default {@linkcode MAX_DEAD_LETTER_BYTES}). */
  readonly maxBytes?: number;
}

/**
 * The JSON object of a dead letter, field by field. `body` is the original
 * body as a string when it is valid UTF-8 (`body_encoding: "utf8"`), else in
 * base64 (`"base64"`), so that any body survives the trip through JSON.
 */
export interface DeadLetterEnvelope {
  readonly topic: string;
  readonly channel: string;
  readonly worker: string;
  readonly message_id: string;
  readonly attempts: number;
  /** When nsqd received the message, in milliseconds since the epoch. */
  readonly timestamp: number;
  /** ISO 8601, e.g. `2025-01-31T12:00:00.000Z`. */
  readonly dead_at: string;
  readonly reason: DeadReason;
  readonly error: string;
  readonly body: string;
  readonly body_encoding: "utf8" | "base64";
  /**
   * With tracing on, the W3C `traceparent` of the span that published the
   * dead letter, a child of the dead message's span: the trace finds it.
   */
  readonly traceparent?: string;
  /**
   * Present when the body was cut to keep the envelope within nsqd's message
   * size; the head kept has the encoding the whole body has, and a UTF-8 head
   * ends on a whole character.
   */
  readonly body_truncated?: true;
  /** The original body's size in bytes, when it was cut. */
  readonly body_bytes?: number;
}

/**
 * nsqd's default `--max-msg-size`: it refuses a larger dead letter, and a
 * refused dead letter is requeued, so an envelope must never exceed it.
 */
export const MAX_DEAD_LETTER_BYTES: number = NSQD_LIMITS.msgBytes;

/** Keeps a leading BOM: the body must come back byte for byte. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * The dead letter of a message, as the bytes to publish: a JSON
 * {@linkcode DeadLetterEnvelope}.
 *
 * @example
 * ```ts
 * import { deadLetterEnvelope } from "./dead_letter.ts";
 *
 * const bytes = deadLetterEnvelope({
 *   topic: "pageviews",
 *   channel: "counter",
 *   worker: "demo/pageview",
 *   message: { id: "0a1b2c3d4e5f6789", attempts: 5, timestamp: 1_700_000_000_000, body: new Uint8Array([123, 125]) },
 *   reason: "max_attempts",
 *   error: "upstream returned 503",
 * });
 * JSON.parse(new TextDecoder().decode(bytes)).body; // "{}"
 * ```
 */
export function deadLetterEnvelope(input: DeadLetterInput): Uint8Array {
  const { message } = input;
  let body: string;
  let bodyEncoding: "utf8" | "base64";
  try {
    body = utf8.decode(message.body);
    bodyEncoding = "utf8";
  } catch {
    body = message.body.toBase64();
    bodyEncoding = "base64";
  }
  const envelope: DeadLetterEnvelope = {
    topic: input.topic,
    channel: input.channel,
    worker: input.worker,
    message_id: message.id,
    attempts: message.attempts,
    timestamp: message.timestamp,
    dead_at: new Date(input.now ?? Date.now()).toISOString(),
    reason: input.reason,
    error: input.error,
    body,
    body_encoding: bodyEncoding,
    ...(input.traceparent === undefined ? {} : { traceparent: input.traceparent }),
  };
  const bytes = encoder.encode(JSON.stringify(envelope));
  const maxBytes = input.maxBytes ?? MAX_DEAD_LETTER_BYTES;
  if (bytes.length <= maxBytes) return bytes;
  // Too large for nsqd: keep the head of the body, in the encoding the whole
  // body has, so that a reader need not guess.
  const cut: DeadLetterEnvelope = {
    ...envelope,
    body: "",
    body_truncated: true,
    body_bytes: message.body.length,
  };
  const room = maxBytes - encoder.encode(JSON.stringify(cut)).length;
  const head = bodyEncoding === "utf8"
    ? utf8Head(body, room)
    : message.body.subarray(0, Math.max(0, Math.floor(room / 4) * 3)).toBase64();
  return encoder.encode(JSON.stringify({ ...cut, body: head }));
}

/** The size in bytes of `text` as a JSON string, without its quotes. */
function jsonBytes(text: string): number {
  return encoder.encode(JSON.stringify(text)).length - 2;
}

/**
 * The longest head of `text` that takes at most `room` bytes as a JSON
 * string, never ending in half a surrogate pair (half a UTF-8 sequence).
 * Escaping makes the size of a head unknown before encoding it, hence the
 * binary search; only an oversized dead letter comes here.
 */
function utf8Head(text: string, room: number): string {
  let fits = 0;
  let over = text.length + 1;
  while (over - fits > 1) {
    const middle = Math.floor((fits + over) / 2);
    if (jsonBytes(wholeCharacters(text, middle)) <= room) fits = middle;
    else over = middle;
  }
  return wholeCharacters(text, fits);
}

function wholeCharacters(text: string, end: number): string {
  const last = text.charCodeAt(end - 1);
  // A high surrogate at the end: its low half was cut off.
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, end - 1) : text.slice(0, end);
}
