/**
 * The spans of a batch worker's batches: one CONSUMER span per
 * `handleBatch` call, the root of a trace of its own (a batch has as many
 * parents as items), with a link to each item's creation context (the
 * `traceparent` in its body, as OpenTelemetry's messaging conventions
 * link a batch to its messages), or, for an item without one, to the
 * item's own delivery span, so every item is reachable from its batch
 * (an unsampled item without one has nothing to link to). Each item keeps
 * its delivery span with its own outcome; the batch's span holds what the
 * call did, and what it publishes is its child. Being a root, the batch is
 * sampled as Deno samples a new trace: its span costs once per batch.
 *
 * @module
 */

import {
  type Attributes,
  context,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { BatchSpan, BatchState, BatchTracing } from "../../batch/batcher.ts";
import { errorText } from "../../error_text.ts";
import type { TaskMessage } from "../../runner/task_runner.ts";
import type { BatchResult, Message } from "../../worker/worker.ts";
import { CREATION_CONTEXT, type DeliverySampling, remote } from "./delivery_sampling.ts";
import { exceptionOf } from "./exception_of.ts";
import { ScopedSpan } from "./scoped_span.ts";

/** What {@linkcode batchTracing} needs of its entry. */
export interface BatchTracingOptions {
  readonly tracer: Tracer;
  /** The name of every batch's span. */
  readonly spanName: string;
  /** The attributes every batch's span starts with, beside its item count. */
  readonly attributes: Attributes;
  /** How the entry's deliveries are sampled: an unsampled item links to its parent. */
  readonly sampling: DeliverySampling;
}

/** How the batches of an entry are traced (see the module's documentation). */
export function batchTracing(options: BatchTracingOptions): BatchTracing {
  return {
    link: (message) => itemLink(message) ?? unsampledLink(options.sampling, message),
    start: (links, items) => startBatch(options, links, items),
  };
}

/**
 * The link of a batch item, read from the active (its delivery's) context:
 * its creation context, else its delivery span; null when neither is valid.
 */
function itemLink(message: Message): Link | null {
  try {
    const active = context.active();
    const linked = (active.getValue(CREATION_CONTEXT) as SpanContext | undefined) ??
      trace.getSpanContext(active);
    if (linked === undefined || !isSpanContextValid(linked)) return null;
    return { context: linked, attributes: { "messaging.message.id": message.id } };
  } catch {
    return null;
  }
}

/**
 * An unsampled item's link: its creation context, the `traceparent` in
 * its body; null without one (its new trace has nothing exported).
 */
function unsampledLink(sampling: DeliverySampling, message: TaskMessage): Link | null {
  if (trace.getSpanContext(context.active()) !== undefined) return null;
  const decision = sampling.decide(message, false);
  if (decision === null || decision.sampled || decision.parent === null) return null;
  const parent = decision.parent;
  return {
    context: remote(parent, parent.traceFlags),
    attributes: { "messaging.message.id": message.id },
  };
}

function startBatch(
  options: BatchTracingOptions,
  links: readonly unknown[],
  items: number,
): BatchSpan {
  try {
    const span = options.tracer.startSpan(options.spanName, {
      kind: SpanKind.CONSUMER,
      attributes: { ...options.attributes, "messaging.batch.message_count": items },
      links: links.filter((link): link is Link => link !== null),
    }, ROOT_CONTEXT);
    return new TracedBatch(span, trace.setSpan(ROOT_CONTEXT, span));
  } catch {
    // The batch runs untraced rather than not at all.
    return UNTRACED_BATCH;
  }
}

/** The CONSUMER span of one `handleBatch` call. */
class TracedBatch extends ScopedSpan implements BatchSpan {
  end(state: BatchState, error: unknown, results: readonly (BatchResult | Error)[] | null): void {
    try {
      this.#end(state, error, results);
    } catch {
      // The items are answered whatever becomes of their batch's span.
    }
  }

  /**
   * A call that threw or timed out is an error with its exception; so is
   * one whose every item failed (a wrong result, a worker bug, fails them
   * all). Items that failed alone are counted here and marked on their own
   * delivery spans.
   */
  #end(state: BatchState, error: unknown, results: readonly (BatchResult | Error)[] | null): void {
    const span = this.span;
    span.setAttribute("nsqworker.batch.result", state);
    if (state === "threw" || state === "timed_out") {
      span.recordException(exceptionOf(error));
      span.setAttribute("error.type", state);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(error) });
    } else if (results !== null) {
      const failed = results.filter((result) => result instanceof Error);
      span.setAttribute("nsqworker.batch.failed_items", failed.length);
      if (failed.length > 0 && failed.length === results.length) {
        span.setAttribute("error.type", "items_failed");
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(failed[0]) });
      }
    }
    span.end();
  }
}

/** What a batch gets when its span could not be started. */
const UNTRACED_BATCH: BatchSpan = {
  run: (work) => work(),
  end() {},
};
