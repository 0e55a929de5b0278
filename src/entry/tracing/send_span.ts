/**
 * The PRODUCER span of one send (a `ctx.publish*` call or a dead letter)
 * and the `traceparent` that the message sent carries.
 *
 * @module
 */

import {
  type Attributes,
  context,
  isSpanContextValid,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import { errorText } from "../../error_text.ts";
import { formatTraceParent } from "../../observe/trace_parent.ts";
import { exceptionOf } from "./exception_of.ts";

/** A PRODUCER span, if its send is sampled, and the `traceparent` that its message carries. */
export class SendSpan {
  readonly #span: Span | null;
  /**
   * Written into the published body, so the receiver's span is this one's
   * child (or, unsampled, the receiver knows to leave the trace out); null
   * when the tracer is a no-op (`OTEL_DENO` set where Deno does not export,
   * as in a binary compiled without it).
   */
  readonly traceparent: string | null;

  constructor(span: Span | null, traceparent: string | null) {
    this.#span = span;
    this.traceparent = traceparent;
  }

  /** Ends the span; with `error`, as failed. */
  end(error?: unknown): void {
    const span = this.#span;
    if (span === null) return;
    if (error !== undefined) {
      span.recordException(exceptionOf(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(error) });
    }
    span.end();
  }
}

/**
 * Starts the span of `worker`'s send of `count` messages to `nsqTopic`, a
 * child of the active span; under an unsampled one it starts none and
 * carries that one's `traceparent` on.
 */
export function startSendSpan(
  tracer: Tracer,
  worker: string,
  nsqTopic: string,
  count: number,
  operation: string,
  extra: Attributes = {},
): SendSpan {
  const active = context.active();
  const parent = trace.getSpanContext(active);
  if (parent !== undefined && (parent.traceFlags & TraceFlags.SAMPLED) === 0) {
    // Its span would be dropped as well; the unsampled parent is carried on as it is.
    return new SendSpan(null, isSpanContextValid(parent) ? formatTraceParent(parent) : null);
  }
  const attributes: Attributes = {
    "messaging.system": "nsq",
    "messaging.operation.type": "send",
    "messaging.operation.name": operation,
    "messaging.destination.name": nsqTopic,
    "nsqworker.worker": worker,
    ...extra,
  };
  if (count !== 1) attributes["messaging.batch.message_count"] = count;
  const span = tracer.startSpan(`${operation} ${nsqTopic}`, {
    kind: SpanKind.PRODUCER,
    attributes,
  }, active);
  const spanContext = span.spanContext();
  return new SendSpan(
    span,
    isSpanContextValid(spanContext) ? formatTraceParent(spanContext) : null,
  );
}
