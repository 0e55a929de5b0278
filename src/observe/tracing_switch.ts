/**
 * Whether the daemon traces, and the ids of the active span for log records.
 * Kept apart from the entry's tracer so that logging, below it, can read them.
 *
 * @module
 */

import { trace } from "@opentelemetry/api";

/**
 * Whether Deno exports telemetry: `OTEL_DENO` is `true` or `1`, as Deno reads
 * it. Without permission to read it, tracing stays off.
 */
export const TRACING_ON: boolean = readSwitch();

function readSwitch(): boolean {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "OTEL_DENO" }).state !== "granted") {
      return false;
    }
    const value = Deno.env.get("OTEL_DENO");
    return value === "true" || value === "1";
  } catch {
    return false;
  }
}

/**
 * The ids of the active span, for a log record written while it is active;
 * null when none is.
 */
export function activeTraceIds(): { trace_id: string; span_id: string } | null {
  const span = trace.getActiveSpan();
  if (span === undefined) return null;
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
