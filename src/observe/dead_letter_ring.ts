/**
 * The last dead letters one entry wrote, for the page: when, why, the
 * error, the attempts and the head of the body. A fixed number is kept, and
 * of each body only a preview, so that a flood of dead letters costs a
 * bounded amount of memory.
 *
 * @module
 */

/** One dead letter as the page lists it. */
export interface DeadLetterRecord {
  /** When it was written, in ms since the epoch. */
  readonly at: number;
  readonly messageId: string;
  readonly attempts: number;
  readonly reason: string;
  /** The error, cut to {@linkcode MAX_ERROR_CHARS}. */
  readonly error: string;
  /** The whole body's size in bytes. */
  readonly bodyBytes: number;
  /** The head of the body, as text or as hex digits. */
  readonly preview: BodyPreview;
}

/** The head of a body: text when it is UTF-8 without control characters, else hex. */
export interface BodyPreview {
  readonly encoding: "text" | "hex";
  readonly text: string;
  /** Whether the body is longer than the preview. */
  readonly cut: boolean;
}

/** Dead letters kept per entry. */
export const DEAD_LETTER_RING_SIZE = 1000;
/** Bytes of a body kept for its preview. */
export const PREVIEW_BYTES = 120;
/** Characters of an error kept. */
export const MAX_ERROR_CHARS = 300;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// C0 controls and DEL, but tab, newline and carriage return: a body with others is binary.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/**
 * The preview of `body`: its first `maxBytes` as text when they are UTF-8
 * (a character cut at the end is left out) without control characters,
 * otherwise the first `maxBytes / 2` bytes as hex digits.
 *
 * @example
 * ```ts
 * import { bodyPreview } from "./dead_letter_ring.ts";
 *
 * bodyPreview(new TextEncoder().encode('{"id":1}')).text; // '{"id":1}'
 * bodyPreview(new Uint8Array([0xde, 0xad])).text; // "de ad"
 * ```
 */
export function bodyPreview(body: Uint8Array, maxBytes: number = PREVIEW_BYTES): BodyPreview {
  const head = body.subarray(0, maxBytes);
  const text = utf8Head(head, head.length < body.length);
  if (text !== null && !CONTROL.test(text)) {
    return { encoding: "text", text, cut: head.length < body.length };
  }
  const bytes = body.subarray(0, Math.floor(maxBytes / 2));
  return {
    encoding: "hex",
    text: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" "),
    cut: bytes.length < body.length,
  };
}

/** `head` as text, or null when it is not UTF-8; when `cut`, up to 3 trailing bytes may be half a character. */
function utf8Head(head: Uint8Array, cut: boolean): string | null {
  for (let drop = 0; drop <= (cut ? 3 : 0) && drop <= head.length; drop++) {
    try {
      return utf8.decode(head.subarray(0, head.length - drop));
    } catch {
      // A shorter head may end before the cut character.
    }
  }
  return null;
}

/**
 * The last `capacity` dead letters of one entry. Its array grows only as
 * dead letters come, so an entry that writes none costs nothing. Each is
 * held as one JSON string: a flat string is the most compact thing the
 * engine keeps (no object headers, and none of the linked pieces an error
 * built by concatenation is made of), about half the memory of the
 * record's objects; reading them back is rare (the page, on a change).
 *
 * @example
 * ```ts
 * import { DeadLetterRing } from "./dead_letter_ring.ts";
 *
 * const ring = new DeadLetterRing(2);
 * const body = new TextEncoder().encode("x");
 * for (const id of ["a", "b", "c"]) {
 *   ring.record({ id, attempts: 5, body }, "max_attempts", "boom");
 * }
 * ring.records().map((r) => r.messageId); // ["c", "b"]
 * ring.written; // 3
 * ```
 */
export class DeadLetterRing {
  readonly capacity: number;
  readonly #records: string[] = [];
  readonly #now: () => number;
  /** Dead letters recorded since the start; the next goes to `written % capacity`. */
  #written = 0;

  constructor(capacity: number = DEAD_LETTER_RING_SIZE, now: () => number = Date.now) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer: current value is ${capacity}`);
    }
    this.capacity = capacity;
    this.#now = now;
  }

  /** Dead letters recorded since the start, those dropped included. */
  get written(): number {
    return this.#written;
  }

  /** Records a dead letter that was published. */
  record(
    message: { readonly id: string; readonly attempts: number; readonly body: Uint8Array },
    reason: string,
    error: string,
  ): void {
    const preview = bodyPreview(message.body);
    const kept: Packed = [
      this.#now(),
      message.id,
      message.attempts,
      reason,
      // An ASCII mark: one character beyond Latin-1 would double the whole record's size.
      error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS - 3)}...` : error,
      message.body.length,
      preview.encoding,
      preview.text,
      preview.cut,
    ];
    this.#records[this.#written % this.capacity] = JSON.stringify(kept);
    this.#written++;
  }

  /** The dead letters held, newest first. */
  records(): DeadLetterRecord[] {
    const out: DeadLetterRecord[] = [];
    const held = this.#records.length;
    for (let i = 1; i <= held; i++) {
      const [at, messageId, attempts, reason, error, bodyBytes, encoding, text, cut] = JSON.parse(
        this.#records[(this.#written - i) % this.capacity]!,
      ) as Packed;
      out.push({
        at,
        messageId,
        attempts,
        reason,
        error,
        bodyBytes,
        preview: { encoding, text, cut },
      });
    }
    return out;
  }
}

/** A record as kept: its fields in order. */
type Packed = [
  at: number,
  messageId: string,
  attempts: number,
  reason: string,
  error: string,
  bodyBytes: number,
  encoding: BodyPreview["encoding"],
  text: string,
  cut: boolean,
];
