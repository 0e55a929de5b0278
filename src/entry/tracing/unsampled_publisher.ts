/**
 * What a delivery its sampler left out publishes through.
 *
 * @module
 */

import type { EntryPublisher } from "../../context/entry_context.ts";
import type { TraceIds } from "../../observe/trace_ids.ts";
import { withTraceParents } from "../../observe/trace_parent.ts";
import type { PublishBody, Publisher } from "../../worker/worker.ts";
import { unsampledTraceParent } from "./delivery_sampling.ts";

/**
 * The publisher of a delivery its sampler left out: it makes no span, and
 * writes the delivery's trace, with the sampled flag off, into what it
 * publishes, so that services downstream under `parentbased_*` leave the
 * trace out too: the parent's ids when the body had a `traceparent` (no
 * span of this service stands between them), else those of its new trace.
 */
export class UnsampledPublisher implements Publisher {
  readonly #publisher: EntryPublisher;
  readonly #field: string | null;
  readonly #traceparent: string;

  constructor(publisher: EntryPublisher, field: string | null, ids: TraceIds) {
    this.#publisher = publisher;
    this.#field = field;
    this.#traceparent = unsampledTraceParent(ids);
  }

  publish(topic: string, body: PublishBody): Promise<void> {
    return this.#publisher.publish(topic, this.#inject([body])[0]);
  }

  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    return this.#publisher.publishMany(topic, this.#inject(bodies));
  }

  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    return this.#publisher.publishDeferred(topic, this.#inject([body])[0], delayMs);
  }

  #inject(bodies: readonly PublishBody[]): readonly PublishBody[] {
    return withTraceParents(bodies, this.#field, this.#traceparent);
  }
}
