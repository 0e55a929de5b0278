/**
 * W3C `traceparent` values as they travel in NSQ message bodies: NSQ has no
 * headers, so a JSON body carries its parent context in a top-level field.
 *
 * @module
 */

/** The ids of a `traceparent`, as OpenTelemetry's span context holds them. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** The trace flags byte; bit 0 is "sampled". */
  readonly traceFlags: number;
}

/** What {@linkcode traceParentOfBody} found in a body. */
export type FoundTraceParent = TraceParent | "absent" | "invalid";

// version "-" trace-id "-" parent-id "-" trace-flags, then more fields only in later versions.
const TRACE_PARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);

/**
 * Reads a `traceparent` as the W3C Trace Context spec says a receiver must:
 * version `ff` and all-zero ids are invalid, version `00` has exactly four
 * fields, and a later version may add fields after the fourth.
 *
 * @example
 * ```ts
 * import { parseTraceParent } from "./trace_parent.ts";
 *
 * parseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")?.spanId;
 * // "b7ad6b7169203331"
 * parseTraceParent("00-00000000000000000000000000000000-b7ad6b7169203331-01"); // null
 * ```
 */
export function parseTraceParent(value: unknown): TraceParent | null {
  if (typeof value !== "string") return null;
  const match = TRACE_PARENT.exec(value);
  if (match === null) return null;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return null;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) };
}

/**
 * The version-00 `traceparent` of a span context.
 *
 * @example
 * ```ts
 * import { formatTraceParent } from "./trace_parent.ts";
 *
 * formatTraceParent({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 });
 * // "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
 * ```
 */
export function formatTraceParent(parent: TraceParent): string {
  const flags = (parent.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${parent.traceId}-${parent.spanId}-${flags}`;
}

const utf8 = new TextDecoder();
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
// After a key: JSON whitespace, the colon, and a string value without escapes.
const STRING_VALUE = /[ \t\n\r]*:[ \t\n\r]*"([^"\\]*)"/y;

/**
 * The `traceparent` in top-level field `field` of a JSON object body:
 * `"absent"` when the body is no JSON object or lacks the field, `"invalid"`
 * when the field holds something that is not a valid `traceparent`.
 *
 * It is read on every delivery while tracing is on, so a body whose last
 * `"field"` is plainly a top-level key with a plain string value is read
 * without parsing the rest of it; anything less plain is parsed whole. A
 * body that is not JSON after that point may then still give its value.
 *
 * @example
 * ```ts
 * import { traceParentOfBody } from "./trace_parent.ts";
 *
 * const body = new TextEncoder().encode(
 *   '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
 * );
 * traceParentOfBody(body, "traceparent"); // { traceId: "0af7…", spanId: "b7ad…", traceFlags: 1 }
 * ```
 */
export function traceParentOfBody(body: Uint8Array, field: string): FoundTraceParent {
  if (!startsLikeObject(body)) return "absent";
  const text = utf8.decode(body);
  const key = quotedKey(field);
  const at = text.lastIndexOf(key);
  // Most bodies carry no context: skip parsing those.
  if (at === -1) return "absent";
  return plainTraceParent(text, at, key.length) ?? parsedTraceParent(text, field);
}

/** The last field asked for, quoted: an entry asks for the same one every time. */
let lastKey = { field: "", quoted: '""' };

function quotedKey(field: string): string {
  if (lastKey.field !== field) lastKey = { field, quoted: JSON.stringify(field) };
  return lastKey.quoted;
}

/**
 * The valid `traceparent` of the key at `at`, when the text before it is
 * free of escapes and leaves it at the object's top level (never closing
 * the object), its value is a plain string, and the text ends with `}`;
 * otherwise undefined.
 */
function plainTraceParent(text: string, at: number, keyLength: number): TraceParent | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < at; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === QUOTE) inString = false;
      else if (char === BACKSLASH) return undefined;
    } else if (char === QUOTE) inString = true;
    else if (char === OPEN_BRACE || char === OPEN_BRACKET) depth++;
    else if ((char === CLOSE_BRACE || char === CLOSE_BRACKET) && --depth === 0) return undefined;
  }
  if (inString || depth !== 1) return undefined;
  STRING_VALUE.lastIndex = at + keyLength;
  const value = STRING_VALUE.exec(text)?.[1];
  if (value === undefined || lastNonSpace(text) !== CLOSE_BRACE) return undefined;
  // An invalid value is left to the full parse: it may be a body that is no JSON at all.
  return parseTraceParent(value) ?? undefined;
}

function lastNonSpace(text: string): number {
  for (let i = text.length - 1; i >= 0; i--) {
    const char = text.charCodeAt(i);
    if (char !== 0x20 && char !== 0x09 && char !== 0x0a && char !== 0x0d) return char;
  }
  return -1;
}

function parsedTraceParent(text: string, field: string): FoundTraceParent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the task runner decides what that means for the message.
    return "absent";
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "absent";
  if (!Object.hasOwn(parsed, field)) return "absent";
  return parseTraceParent((parsed as Record<string, unknown>)[field]) ?? "invalid";
}

/** Whether the first byte after leading JSON whitespace is `{`. */
function startsLikeObject(body: Uint8Array): boolean {
  for (const byte of body) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === OPEN_BRACE;
  }
  return false;
}

/**
 * `body` with `traceparent` in its field `field`, when `body` is a plain JSON
 * object that has no such field yet; otherwise `body` itself. The worker's
 * object is copied, never changed.
 *
 * @example
 * ```ts
 * import { withTraceParent } from "./trace_parent.ts";
 *
 * withTraceParent({ a: 1 }, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
 * // { a: 1, traceparent: "00-0af7…-01" }
 * ```
 */
export function withTraceParent(body: unknown, field: string, traceparent: string): unknown {
  if (typeof body !== "object" || body === null) return body;
  const prototype = Object.getPrototypeOf(body);
  // Arrays, bytes, class instances (a toJSON may reshape them): left as they are.
  if (prototype !== Object.prototype && prototype !== null) return body;
  if (Object.hasOwn(body, field)) return body;
  return { ...body, [field]: traceparent };
}
