/**
 * The `traceparent` in a JSON body, read from its bytes: it runs on every
 * delivery while tracing is on, so it parses a body only when the bytes do
 * not tell plainly.
 *
 * @module
 */

import { parseTraceParent, type TraceParent } from "./trace_parent.ts";

/** What {@linkcode traceParentOfBody} found in a body. */
export type FoundTraceParent = TraceParent | "absent" | "invalid";

const utf8 = new TextDecoder();
const encoder = new TextEncoder();
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const DASH = 0x2d;
/** Version 00's length, and where a later version's extra fields start. */
const TRACE_PARENT_LENGTH = 55;

/**
 * The `traceparent` in top-level field `field` of a JSON object body:
 * `"absent"` when the body is no JSON object or lacks the field, `"invalid"`
 * when the field holds something that is not a valid `traceparent`.
 *
 * It runs on every delivery while tracing is on, so it reads the bytes
 * where it can: when the last `"field"` in the body is a key with a plain
 * string value (no escapes), it checks only the shorter side of the body
 * for that key being at the top level, and the ids are read from the bytes
 * when first asked for. Anything less plain is parsed whole. A body that is
 * not JSON on the side left unread may then still give its `traceparent`.
 *
 * @example
 * ```ts
 * import { traceParentOfBody } from "./trace_parent_of_body.ts";
 *
 * const body = new TextEncoder().encode(
 *   '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
 * );
 * const found = traceParentOfBody(body, "traceparent");
 * typeof found === "object" && found.spanId; // "b7ad6b7169203331"
 * ```
 */
export function traceParentOfBody(body: Uint8Array, field: string): FoundTraceParent {
  const open = objectStart(body);
  if (open === -1) return "absent";
  const key = searchKey(field);
  const at = lastIndexOf(body, key);
  // Most bodies carry no context: skip parsing those.
  if (at === -1) return "absent";
  return plainTraceParent(body, open, at, key.bytes.length) ?? parsedTraceParent(body, field);
}

/** `"field"` as UTF-8 JSON, and the shift table of a backward Horspool search for it. */
interface SearchKey {
  readonly field: string;
  readonly bytes: Uint8Array;
  readonly shift: Int32Array;
}

/** The last field asked for: an entry asks for the same one every time. */
let lastKey: SearchKey | null = null;

function searchKey(field: string): SearchKey {
  if (lastKey?.field === field) return lastKey;
  const bytes = encoder.encode(JSON.stringify(field));
  // A window starting at i moves left by the distance from its start to the first
  // occurrence of body[i] in the rest of the key.
  const shift = new Int32Array(256).fill(bytes.length);
  for (let j = bytes.length - 1; j >= 1; j--) shift[bytes[j]!] = j;
  lastKey = { field, bytes, shift };
  return lastKey;
}

function lastIndexOf(body: Uint8Array, key: SearchKey): number {
  const { bytes, shift } = key;
  for (let i = body.length - bytes.length; i >= 0; i -= shift[body[i]!]!) {
    let j = 0;
    while (j < bytes.length && body[i + j] === bytes[j]) j++;
    if (j === bytes.length) return i;
  }
  return -1;
}

/**
 * The valid `traceparent` of the key whose opening quote is at `at`, when
 * its value is a plain string and the shorter side of the body shows the
 * key at the top level; otherwise undefined, and the body is parsed whole.
 */
function plainTraceParent(
  body: Uint8Array,
  open: number,
  at: number,
  keyLength: number,
): TraceParent | undefined {
  let i = skipSpace(body, at + keyLength);
  if (body[i] !== COLON) return undefined;
  i = skipSpace(body, i + 1);
  if (body[i] !== QUOTE) return undefined;
  const from = i + 1;
  // Version 00 ends right there; a later version may go on.
  let to = body[from + TRACE_PARENT_LENGTH] === QUOTE ? from + TRACE_PARENT_LENGTH : from;
  while (to < body.length && body[to] !== QUOTE && body[to] !== BACKSLASH) to++;
  const last = skipSpaceBack(body, body.length - 1);
  if (body[to] !== QUOTE || body[last] !== CLOSE_BRACE) return undefined;
  const topLevel = at - open <= last - to
    ? keyAfterPrefix(body, open, at)
    : keyBeforeSuffix(body, open, at, to + 1, last);
  // An invalid value is left to the full parse: it may be a body that is no JSON at all.
  return topLevel ? bodyTraceParent(body, from, to) : undefined;
}

/**
 * Whether the key at `at` is at the top level, read from the `{` to it
 * (exact): nothing before it closes the object, and it is outside strings
 * and brackets.
 */
function keyAfterPrefix(body: Uint8Array, open: number, at: number): boolean {
  return unmatchedClose(body, open + 1, at) === BALANCED;
}

/**
 * Whether the key at `at` is at the top level, read from after its value
 * (`after`) to the body's last byte (`last`, a `}`): in valid JSON a key
 * (a quote after `{` or `,`) is, when the first bracket there that closes
 * more than it opened is that last one.
 */
function keyBeforeSuffix(
  body: Uint8Array,
  open: number,
  at: number,
  after: number,
  last: number,
): boolean {
  const before = skipSpaceBack(body, at - 1);
  if (before < open || (body[before] !== OPEN_BRACE && body[before] !== COMMA)) return false;
  return unmatchedClose(body, after, last + 1) === last;
}

/** {@linkcode unmatchedClose} found every bracket closed, and no string open. */
const BALANCED = -1;

/**
 * Lexes `body[from, to)` as JSON, from outside any string: the index of the
 * first bracket that closes more than was opened since `from`; else
 * {@linkcode BALANCED}, or -2 when a string or bracket is still open at `to`.
 */
function unmatchedClose(body: Uint8Array, from: number, to: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < to; i++) {
    const byte = body[i]!;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth++;
    else if ((byte === CLOSE_BRACE || byte === CLOSE_BRACKET) && --depth < 0) return i;
  }
  return !inString && depth === 0 ? BALANCED : -2;
}

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function skipSpace(body: Uint8Array, i: number): number {
  while (isSpace(body[i])) i++;
  return i;
}

function skipSpaceBack(body: Uint8Array, i: number): number {
  while (i >= 0 && isSpace(body[i])) i--;
  return i;
}

/** The value of each byte as a lowercase hex digit; -1 for anything else. */
const HEX_DIGITS = Int8Array.from(
  { length: 256 },
  (_, byte) =>
    byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x61 && byte <= 0x66 ? byte - 0x57 : -1,
);

function hexDigit(byte: number): number {
  return HEX_DIGITS[byte]!;
}

/** Whether `count` bytes from `from` are lowercase hex digits, not all `0`. */
function hexId(body: Uint8Array, from: number, count: number): boolean {
  let any = 0;
  for (let i = from; i < from + count; i++) {
    const digit = hexDigit(body[i]!);
    if (digit === -1) return false;
    any |= digit;
  }
  return any !== 0;
}

/** The `traceparent` in `body[from, to)`, by the rules of {@linkcode parseTraceParent}; else undefined. */
function bodyTraceParent(body: Uint8Array, from: number, to: number): TraceParent | undefined {
  const versionHigh = hexDigit(body[from]!);
  const versionLow = hexDigit(body[from + 1]!);
  const version = versionHigh * 16 + versionLow;
  const length = to - from;
  if (versionHigh < 0 || versionLow < 0 || version === 0xff) return undefined;
  if (version === 0 ? length !== TRACE_PARENT_LENGTH : length < TRACE_PARENT_LENGTH) {
    return undefined;
  }
  if (length > TRACE_PARENT_LENGTH && body[from + TRACE_PARENT_LENGTH] !== DASH) return undefined;
  if (body[from + 2] !== DASH || body[from + 35] !== DASH || body[from + 52] !== DASH) {
    return undefined;
  }
  if (!hexId(body, from + 3, 32) || !hexId(body, from + 36, 16)) return undefined;
  const high = hexDigit(body[from + 53]!);
  const low = hexDigit(body[from + 54]!);
  if (high < 0 || low < 0) return undefined;
  return new BodyTraceParent(body, from, high * 16 + low);
}

/** A `traceparent` read in place: its ids are decoded only when asked for. */
class BodyTraceParent implements TraceParent {
  readonly traceFlags: number;
  readonly #body: Uint8Array;
  readonly #from: number;

  constructor(body: Uint8Array, from: number, traceFlags: number) {
    this.#body = body;
    this.#from = from;
    this.traceFlags = traceFlags;
  }

  get traceId(): string {
    return utf8.decode(this.#body.subarray(this.#from + 3, this.#from + 35));
  }

  get spanId(): string {
    return utf8.decode(this.#body.subarray(this.#from + 36, this.#from + 52));
  }
}

function parsedTraceParent(body: Uint8Array, field: string): FoundTraceParent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(body));
  } catch {
    // Not JSON: the task runner decides what that means for the message.
    return "absent";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "absent";
  if (!Object.hasOwn(parsed, field)) return "absent";
  return parseTraceParent((parsed as Record<string, unknown>)[field]) ?? "invalid";
}

/** Where the object starts: the first byte after leading JSON whitespace, if it is `{`; else -1. */
function objectStart(body: Uint8Array): number {
  const i = skipSpace(body, 0);
  return body[i] === OPEN_BRACE ? i : -1;
}
