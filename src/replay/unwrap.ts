/**
 * Reading a dead letter back: the envelope of `dead_letter.ts`, checked
 * field by field, and the original body restored byte for byte.
 *
 * @module
 */

import { isNsqName } from "../config/names.ts";

/** What a message of a dead letter topic turned out to be. */
export type Unwrapped =
  | {
    readonly kind: "dead_letter";
    readonly topic: string;
    readonly worker: string;
    readonly reason: string;
    readonly error: string;
    /** The original body, exactly as it was published. */
    readonly body: Uint8Array;
  }
  /** Ours, but only the head of its body was kept: replaying it would publish something else. */
  | {
    readonly kind: "truncated";
    readonly topic: string;
    readonly worker: string;
    readonly reason: string;
    readonly error: string;
  }
  /** Not an envelope of ours: never published anywhere. */
  | { readonly kind: "foreign"; readonly why: string };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
const TEXT_FIELDS = ["topic", "worker", "reason", "error", "body"] as const;

/**
 * Unwraps one message of a dead letter topic.
 *
 * @example
 * ```ts
 * const found = unwrapDeadLetter(message.body);
 * if (found.kind === "dead_letter") await publish(found.topic, found.body);
 * ```
 */
export function unwrapDeadLetter(bytes: Uint8Array): Unwrapped {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    return { kind: "foreign", why: "not JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { kind: "foreign", why: "not a JSON object" };
  }
  const envelope = value as Record<string, unknown>;
  for (const name of TEXT_FIELDS) {
    if (typeof envelope[name] !== "string") {
      return { kind: "foreign", why: `no string field ${name}` };
    }
  }
  const { topic, worker, reason, error, body } = envelope as Record<string, string>;
  if (!isNsqName(topic!)) return { kind: "foreign", why: "topic is not an NSQ topic name" };
  const about = { topic: topic!, worker: worker!, reason: reason!, error: error! };
  if (envelope.body_truncated === true) return { kind: "truncated", ...about };
  let original: Uint8Array;
  if (envelope.body_encoding === "utf8") {
    original = encoder.encode(body!);
  } else if (envelope.body_encoding === "base64") {
    try {
      original = Uint8Array.fromBase64(body!);
    } catch {
      return { kind: "foreign", why: "body is not base64" };
    }
  } else {
    return { kind: "foreign", why: "body_encoding is neither utf8 nor base64" };
  }
  // nsqd refuses an empty message, so no dead letter can carry one.
  if (original.length === 0) return { kind: "foreign", why: "empty body" };
  return { kind: "dead_letter", ...about, body: original };
}
