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

/**
 * `bodies`, each through {@linkcode withTraceParent}; `bodies` themselves
 * when there is no field to write (none configured) or no `traceparent` to
 * write into it (a tracer that makes no real spans).
 *
 * @example
 * ```ts
 * import { withTraceParents } from "./trace_parent.ts";
 *
 * withTraceParents([{ a: 1 }, "text"], "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
 * // [{ a: 1, traceparent: "00-0af7…-01" }, "text"]
 * withTraceParents([{ a: 1 }], null, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
 * // [{ a: 1 }]
 * ```
 */
export function withTraceParents(
  bodies: readonly unknown[],
  field: string | null,
  traceparent: string | null,
): readonly unknown[] {
  return field === null || traceparent === null
    ? bodies
    : bodies.map((body) => withTraceParent(body, field, traceparent));
}
