/**
 * OpenTelemetry tracing on Deno's built-in support (docs/tracing.md): a CONSUMER
 * span per delivery, PRODUCER spans for what a worker publishes and for dead
 * letters, and the W3C `traceparent` carried in JSON bodies.
 *
 * Deno exports spans only when started with `OTEL_DENO=true`; otherwise the
 * API's tracer is a no-op. `TRACING_ON` (observe/tracing_switch.ts) mirrors that switch, read
 * once at start, and the daemon builds an {@linkcode EntryTracer} only when
 * it is on: with tracing off the message path makes no span and allocates
 * nothing for tracing. On, each delivery is sampled or not before its span
 * would start (delivery_sampling.ts): an unsampled one starts none.
 *
 * @module
 */

import {
  type Attributes,
  type Context,
  context,
  SpanKind,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { BatchTracing } from "../../batch/batcher.ts";
import type { EntryPublisher } from "../../context/entry_context.ts";
import { envTraceSampler, type TraceSampler } from "../../observe/trace_sampler.ts";
import type { TaskMessage } from "../../runner/task_runner.ts";
import { VERSION } from "../../version.ts";
import type { Publisher, WorkerDefinition } from "../../worker/worker.ts";
import { batchTracing } from "./batch_tracing.ts";
import { DeliverySampling, unsampledTraceParent } from "./delivery_sampling.ts";
import { DeliverySpan } from "./delivery_span.ts";
import { SendSpan, startSendSpan } from "./send_span.ts";
import { tracedWorker } from "./traced_worker.ts";
import { tracingPublisher } from "./tracing_publisher.ts";
import { UnsampledPublisher } from "./unsampled_publisher.ts";

/** The instrumentation scope of every span the daemon makes. */
const TRACER_NAME = "nsqworker";

/** What an {@linkcode EntryTracer} needs of its entry. */
export interface EntryTracerOptions {
  /** The topic as written in the config (without `topic_prefix`). */
  readonly topic: string;
  /** The topic subscribed to: `topic_prefix` + `topic`. */
  readonly nsqTopic: string;
  readonly channel: string;
  /** The worker name, e.g. `demo/pageview`. */
  readonly worker: string;
  /** The top-level JSON field holding a `traceparent`; null: none read or written. */
  readonly traceField: string | null;
  /** Called for each delivery whose trace field holds no valid `traceparent`. */
  readonly onInvalidTraceParent: () => void;
  /** The entry's publisher: what its traced publisher and its unsampled deliveries send through. */
  readonly publisher: EntryPublisher;
  /** Default: the global tracer provider's (Deno's, with `OTEL_DENO=true`). */
  readonly tracer?: Tracer;
  /** Default: the one `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name, as Deno's is. */
  readonly sampler?: TraceSampler;
}

/** One entry's spans; made only when `TRACING_ON` (observe/tracing_switch.ts). */
export class EntryTracer {
  readonly #tracer: Tracer;
  readonly #options: EntryTracerOptions;
  readonly #topicPrefix: string;
  readonly #deliveryName: string;
  /** The attributes every CONSUMER span of the entry starts with. */
  readonly #processAttributes: Attributes;
  readonly #sampling: DeliverySampling;

  constructor(options: EntryTracerOptions) {
    this.#options = options;
    this.#tracer = options.tracer ?? trace.getTracer(TRACER_NAME, VERSION);
    this.#sampling = new DeliverySampling({
      traceField: options.traceField,
      onInvalidTraceParent: options.onInvalidTraceParent,
      sampler: options.sampler ?? envTraceSampler(),
    });
    // nsqTopic is topic_prefix + topic by construction; worker topics get the same prefix.
    this.#topicPrefix = options.nsqTopic.slice(0, options.nsqTopic.length - options.topic.length);
    this.#deliveryName = `process ${options.nsqTopic}`;
    this.#processAttributes = {
      "messaging.system": "nsq",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.destination.name": options.nsqTopic,
      "messaging.consumer.group.name": options.channel,
      "nsqworker.worker": options.worker,
    };
  }

  /**
   * Decides whether one delivery is sampled and, if it is, starts its
   * CONSUMER span, a child of the `traceparent` in its body when there is a
   * valid one. Null when it is not sampled (what it publishes still carries
   * its trace on, see {@linkcode publisherOf}), and when the tracer fails:
   * then the message goes on untraced.
   *
   * Nothing is kept of an unsampled delivery: the same decision, made again
   * from the message when it publishes or is dead-lettered, finds the same.
   */
  start(message: TaskMessage): DeliverySpan | null {
    try {
      const decision = this.#sampling.decide(message, true);
      if (decision === null || !decision.sampled) return null;
      return this.#startDelivery(message, decision.parent);
    } catch {
      return null;
    }
  }

  #startDelivery(message: TaskMessage, parent: Context): DeliverySpan {
    const span = this.#tracer.startSpan(this.#deliveryName, {
      kind: SpanKind.CONSUMER,
      attributes: {
        ...this.#processAttributes,
        "messaging.message.id": message.id,
        "messaging.message.body.size": message.body.length,
        "nsqworker.attempts": message.attempts,
      },
    }, parent);
    return new DeliverySpan(span, trace.setSpan(parent, span));
  }

  /**
   * Where the `ctx.publish*` of a delivery that {@linkcode start} left
   * unsampled go: its bodies get the delivery's unsampled `traceparent` and
   * no span is made. Undefined for any other delivery. Asked at its first
   * publish, so a delivery that publishes nothing never asks.
   */
  publisherOf(message: TaskMessage): Publisher | undefined {
    const ids = this.#sampling.unsampled(message);
    if (ids === null) return undefined;
    return new UnsampledPublisher(this.#options.publisher, this.#options.traceField, ids);
  }

  /** The worker with what its `handle` throws recorded on the delivery's span (traced_worker.ts). */
  worker(definition: WorkerDefinition): WorkerDefinition {
    return tracedWorker(definition);
  }

  /** The spans of a batch worker's batches (batch_tracing.ts). */
  batches(): BatchTracing {
    return batchTracing({
      tracer: this.#tracer,
      spanName: `${this.#deliveryName} batch`,
      attributes: this.#processAttributes,
      sampling: this.#sampling,
    });
  }

  /**
   * The entry's publisher making a PRODUCER span for each `publish*` call
   * (tracing_publisher.ts); the topics a worker names get the entry's
   * `topic_prefix`.
   */
  publisher(): EntryPublisher {
    return tracingPublisher(
      this.#options.publisher,
      this.#options.traceField,
      (topic, count, operation) => this.#startSend(this.#topicPrefix + topic, count, operation),
    );
  }

  /**
   * Starts the PRODUCER span of `message`'s dead letter, a child of the
   * active (delivery) span; its `traceparent` goes into the envelope. An
   * unsampled delivery's dead letter gets no span and its unsampled
   * `traceparent`.
   */
  deadLetter(nsqTopic: string, message: TaskMessage): SendSpan {
    // The outcome is carried out inside the delivery's span when it has one.
    if (trace.getSpanContext(context.active()) === undefined) {
      const ids = this.#sampling.unsampled(message);
      if (ids !== null) return new SendSpan(null, unsampledTraceParent(ids));
    }
    return this.#startSend(nsqTopic, 1, "publish", { "nsqworker.dead_letter": true });
  }

  #startSend(
    nsqTopic: string,
    count: number,
    operation: string,
    extra: Attributes = {},
  ): SendSpan {
    return startSendSpan(this.#tracer, this.#options.worker, nsqTopic, count, operation, extra);
  }
}
