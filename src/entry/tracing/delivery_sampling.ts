/**
 * Whether a delivery is traced, decided before its span would start: with
 * a valid `traceparent` in its body, as the sampler decides for a child of
 * that parent; without one, for a new trace (src/observe/trace_sampler.ts).
 *
 * @module
 */

import {
  type Context,
  createContextKey,
  ROOT_CONTEXT,
  type SpanContext,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import type { TaskMessage } from "../../runner/task_runner.ts";
import { deliveryTraceIds, type TraceIds } from "../../observe/trace_ids.ts";
import { formatTraceParent, type TraceParent } from "../../observe/trace_parent.ts";
import { traceParentOfBody } from "../../observe/trace_parent_of_body.ts";
import {
  sampledAsRoot,
  sampledWithParent,
  type TraceSampler,
} from "../../observe/trace_sampler.ts";

/**
 * Where a delivery's context keeps the context its message was created in
 * (the body's `traceparent`): the span of its batch links to it.
 */
export const CREATION_CONTEXT = createContextKey("nsqworker.creation_context");

/**
 * How a delivery is traced: sampled, under `parent` (its body's
 * `traceparent`, or the ids drawn for its new trace); or not, handing `ids`
 * on: its parent's, or those drawn for its new trace.
 */
export type DeliveryDecision =
  | { readonly sampled: true; readonly parent: Context; readonly ids: null }
  | { readonly sampled: false; readonly parent: TraceParent | null; readonly ids: TraceIds };

/** A new trace, sampled: Deno draws its ids. */
const SAMPLED_ROOT: DeliveryDecision = Object.freeze({
  sampled: true,
  parent: ROOT_CONTEXT,
  ids: null,
});

/** What {@linkcode DeliverySampling} needs of its entry. */
export interface DeliverySamplingOptions {
  /** The top-level JSON field holding a `traceparent`; null: none read. */
  readonly traceField: string | null;
  /** Called for each delivery whose trace field holds no valid `traceparent`. */
  readonly onInvalidTraceParent: () => void;
  readonly sampler: TraceSampler;
}

/** Decides, for each delivery of one entry, whether it is sampled. */
export class DeliverySampling {
  readonly #options: DeliverySamplingOptions;

  constructor(options: DeliverySamplingOptions) {
    this.#options = options;
  }

  /**
   * Whether `message` is sampled, from its body's `traceparent` (`count`:
   * an invalid one is counted) and, for a new trace under a ratio, from the
   * ids drawn for it; null for a new trace left out without a ratio, whose
   * ids are drawn only if they are ever needed.
   */
  decide(message: TaskMessage, count: boolean): DeliveryDecision | null {
    const field = this.#options.traceField;
    let parent: TraceParent | null = null;
    if (field !== null) {
      const found = traceParentOfBody(message.body, field);
      if (found === "invalid") {
        if (count) this.#options.onInvalidTraceParent();
      } else if (found !== "absent") parent = found;
    }
    const sampler = this.#options.sampler;
    if (parent !== null) {
      const sampled = sampledWithParent(sampler, parent);
      if (!sampled) return { sampled, parent, ids: parent };
      const creation = remote(parent, parent.traceFlags);
      return {
        sampled,
        parent: trace.setSpanContext(ROOT_CONTEXT, creation).setValue(CREATION_CONTEXT, creation),
        ids: null,
      };
    }
    if (sampler.ratio >= 1) return SAMPLED_ROOT;
    if (sampler.ratio <= 0) return null;
    const ids = deliveryTraceIds(message.idScope, message.id);
    if (!sampledAsRoot(sampler, ids.traceId)) return { sampled: false, parent: null, ids };
    // Deno's API starts a root span only on a trace id it draws and decides on itself, which
    // would sample ratio² of these; under the drawn ids Deno decides as this sampler did.
    return {
      sampled: true,
      parent: trace.setSpanContext(ROOT_CONTEXT, remote(ids, TraceFlags.SAMPLED)),
      ids: null,
    };
  }

  /** The trace an unsampled delivery hands on; null for a sampled one. */
  unsampled(message: TaskMessage): TraceIds | null {
    const decision = this.decide(message, false);
    if (decision === null) return deliveryTraceIds(message.idScope, message.id);
    return decision.sampled ? null : decision.ids;
  }
}

/** A span context from elsewhere (a body, or ids drawn without a span). */
export function remote(ids: TraceIds, traceFlags: number): SpanContext {
  return { traceId: ids.traceId, spanId: ids.spanId, traceFlags, isRemote: true };
}

/** The `traceparent` an unsampled delivery hands on: its ids with the sampled flag off. */
export function unsampledTraceParent(ids: TraceIds): string {
  return formatTraceParent({ traceId: ids.traceId, spanId: ids.spanId, traceFlags: 0 });
}
