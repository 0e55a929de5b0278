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
 * would start (src/observe/trace_sampler.ts): an unsampled one starts none.
 *
 * @module
 */

import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import type { EntryPublisher } from "../context/entry_context.ts";
import { errorText } from "../error_text.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { BatchSpan, BatchState, BatchTracing } from "../batch/batcher.ts";
import type { Outcome } from "../runner/outcome.ts";
import type { TaskMessage } from "../runner/task_runner.ts";
import { deliveryTraceIds, type TraceIds } from "../observe/trace_ids.ts";
import { formatTraceParent, type TraceParent, withTraceParent } from "../observe/trace_parent.ts";
import { traceParentOfBody } from "../observe/trace_parent_of_body.ts";
import {
  envTraceSampler,
  sampledAsRoot,
  sampledWithParent,
  type TraceSampler,
} from "../observe/trace_sampler.ts";
import { VERSION } from "../version.ts";
import type {
  BatchResult,
  Message,
  PublishBody,
  Publisher,
  WorkerDefinition,
} from "../worker/worker.ts";

type Handle = NonNullable<WorkerDefinition["handle"]>;
/** The instrumentation scope of every span the daemon makes. */
const TRACER_NAME = "nsqworker";

/**
 * Where a delivery's context keeps the context its message was created in
 * (the body's `traceparent`): the span of its batch links to it.
 */
const CREATION_CONTEXT = createContextKey("nsqworker.creation_context");

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
  readonly #sampler: TraceSampler;

  constructor(options: EntryTracerOptions) {
    this.#options = options;
    this.#tracer = options.tracer ?? trace.getTracer(TRACER_NAME, VERSION);
    this.#sampler = options.sampler ?? envTraceSampler();
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
      const decision = this.#decide(message, true);
      if (decision === null || !decision.sampled) return null;
      return this.#startDelivery(message, decision.parent);
    } catch {
      return null;
    }
  }

  /**
   * Whether `message` is sampled, from its body's `traceparent` (`count`:
   * an invalid one is counted) and, for a new trace under a ratio, from the
   * ids drawn for it; null for a new trace left out without a ratio, whose
   * ids are drawn only if they are ever needed.
   */
  #decide(message: TaskMessage, count: boolean): Decision | null {
    const field = this.#options.traceField;
    let parent: TraceParent | null = null;
    if (field !== null) {
      const found = traceParentOfBody(message.body, field);
      if (found === "invalid") {
        if (count) this.#options.onInvalidTraceParent();
      } else if (found !== "absent") parent = found;
    }
    const sampler = this.#sampler;
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
  #unsampled(message: TaskMessage): TraceIds | null {
    const decision = this.#decide(message, false);
    if (decision === null) return deliveryTraceIds(message.idScope, message.id);
    return decision.sampled ? null : decision.ids;
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
    const ids = this.#unsampled(message);
    if (ids === null) return undefined;
    return new UnsampledPublisher(this.#options.publisher, this.#options.traceField, ids);
  }

  /**
   * The worker with its `handle` recording what it throws or rejects with as
   * an exception event on the delivery's span.
   */
  worker(definition: WorkerDefinition): WorkerDefinition {
    const handle = definition.handle;
    // A batch worker's errors go on its batch's span (see batches()).
    if (handle === undefined) return definition;
    const traced: Handle = function (this: unknown, body, ctx) {
      let result: unknown;
      try {
        result = handle.call(this, body, ctx);
      } catch (error) {
        recordException(error);
        throw error;
      }
      if (isPromiseLike(result)) return Promise.resolve(result).then(ignore, rethrowRecorded);
      return result as ReturnType<Handle>;
    };
    return { ...definition, handle: traced };
  }

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
   */
  batches(): BatchTracing {
    return {
      link: (message) => itemLink(message) ?? this.#unsampledLink(message),
      start: (links, items) => this.#startBatch(links, items),
    };
  }

  /**
   * An unsampled item's link: its creation context, the `traceparent` in
   * its body; null without one (its new trace has nothing exported).
   */
  #unsampledLink(message: TaskMessage): Link | null {
    if (trace.getSpanContext(context.active()) !== undefined) return null;
    const decision = this.#decide(message, false);
    if (decision === null || decision.sampled || decision.parent === null) return null;
    const parent = decision.parent;
    return {
      context: remote(parent, parent.traceFlags),
      attributes: { "messaging.message.id": message.id },
    };
  }

  #startBatch(links: readonly unknown[], items: number): BatchSpan {
    try {
      const span = this.#tracer.startSpan(`${this.#deliveryName} batch`, {
        kind: SpanKind.CONSUMER,
        attributes: { ...this.#processAttributes, "messaging.batch.message_count": items },
        links: links.filter((link): link is Link => link !== null),
      }, ROOT_CONTEXT);
      return new TracedBatch(span, trace.setSpan(ROOT_CONTEXT, span));
    } catch {
      // The batch runs untraced rather than not at all.
      return UNTRACED_BATCH;
    }
  }

  /**
   * The entry's publisher making a PRODUCER span for each `publish*` call
   * and, with a trace field, writing that span's `traceparent` into JSON
   * object bodies. Under an unsampled span (a batch's) it makes none and
   * writes that span's.
   */
  publisher(): EntryPublisher {
    const publisher = this.#options.publisher;
    const field = this.#options.traceField;
    const inject = (bodies: readonly PublishBody[], traceparent: string | null) =>
      injected(bodies, field, traceparent);
    return {
      publish: (topic, body) =>
        this.#send(topic, 1, "publish", (tp) => publisher.publish(topic, inject([body], tp)[0])),
      publishMany: (topic, bodies) =>
        this.#send(
          topic,
          bodies.length,
          "publish",
          (tp) => publisher.publishMany(topic, inject(bodies, tp)),
        ),
      publishDeferred: (topic, body, delayMs) =>
        this.#send(
          topic,
          1,
          "publish_deferred",
          (tp) => publisher.publishDeferred(topic, inject([body], tp)[0], delayMs),
        ),
      publishRaw: (nsqTopic, body) => publisher.publishRaw(nsqTopic, body),
    };
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
      const ids = this.#unsampled(message);
      if (ids !== null) return new SendSpan(null, unsampledTraceParent(ids));
    }
    return this.#startSend(nsqTopic, 1, "publish", { "nsqworker.dead_letter": true });
  }

  async #send(
    topic: string,
    count: number,
    operation: string,
    send: (traceparent: string | null) => Promise<void>,
  ): Promise<void> {
    const sendSpan = this.#startSend(this.#topicPrefix + topic, count, operation);
    try {
      await send(sendSpan.traceparent);
    } catch (error) {
      sendSpan.end(error);
      throw error;
    }
    sendSpan.end();
  }

  #startSend(
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
      "nsqworker.worker": this.#options.worker,
      ...extra,
    };
    if (count !== 1) attributes["messaging.batch.message_count"] = count;
    const span = this.#tracer.startSpan(`${operation} ${nsqTopic}`, {
      kind: SpanKind.PRODUCER,
      attributes,
    }, active);
    const spanContext = span.spanContext();
    return new SendSpan(
      span,
      isSpanContextValid(spanContext) ? formatTraceParent(spanContext) : null,
    );
  }
}

/** `bodies`, with `traceparent` written into field `field` of each plain JSON object among them. */
function injected(
  bodies: readonly PublishBody[],
  field: string | null,
  traceparent: string | null,
): readonly PublishBody[] {
  return field === null || traceparent === null
    ? bodies
    : bodies.map((body) => withTraceParent(body, field, traceparent));
}

/**
 * How a delivery is traced: sampled, under `parent` (its body's
 * `traceparent`, or the ids drawn for its new trace); or not, handing `ids`
 * on: its parent's, or those drawn for its new trace.
 */
type Decision =
  | { readonly sampled: true; readonly parent: Context; readonly ids: null }
  | { readonly sampled: false; readonly parent: TraceParent | null; readonly ids: TraceIds };

/** A new trace, sampled: Deno draws its ids. */
const SAMPLED_ROOT: Decision = Object.freeze({ sampled: true, parent: ROOT_CONTEXT, ids: null });

/** A span context from elsewhere (a body, or ids drawn without a span). */
function remote(ids: TraceIds, traceFlags: number): SpanContext {
  return { traceId: ids.traceId, spanId: ids.spanId, traceFlags, isRemote: true };
}

/** The `traceparent` an unsampled delivery hands on: its ids with the sampled flag off. */
function unsampledTraceParent(ids: TraceIds): string {
  return formatTraceParent({ traceId: ids.traceId, spanId: ids.spanId, traceFlags: 0 });
}

/**
 * The publisher of a delivery its sampler left out: it makes no span, and
 * writes the delivery's trace, with the sampled flag off, into what it
 * publishes, so that services downstream under `parentbased_*` leave the
 * trace out too: the parent's ids when the body had a `traceparent` (no
 * span of this service stands between them), else those of its new trace.
 */
class UnsampledPublisher implements Publisher {
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
    return injected(bodies, this.#field, this.#traceparent);
  }
}

/** A span and the context in which it is the active one. */
class ScopedSpan {
  protected readonly span: Span;
  readonly #context: Context;

  constructor(span: Span, context: Context) {
    this.span = span;
    this.#context = context;
  }

  /** Runs `work` with this span active: what it logs, publishes and awaits sees it. */
  run<T>(work: () => T): T {
    return context.with(this.#context, work);
  }
}

/** The CONSUMER span of one delivery, from its receipt to its answer. */
export class DeliverySpan extends ScopedSpan {
  /** Records the outcome (a failure as the span's error status) and ends the span; never throws. */
  end(outcome: Outcome): void {
    try {
      this.#end(outcome);
    } catch {
      // The message is answered whatever becomes of its span.
    }
  }

  #end(outcome: Outcome): void {
    const span = this.span;
    span.setAttribute("nsqworker.outcome", outcome.kind);
    if (outcome.kind === "retry" || outcome.kind === "dead") {
      if (outcome.kind === "dead") span.setAttribute("nsqworker.dead_reason", outcome.reason);
      span.setAttribute("error.type", outcome.kind === "dead" ? outcome.reason : "retry");
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    }
    span.end();
  }
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

function ignore(): void {}

function recordException(error: unknown): void {
  trace.getActiveSpan()?.recordException(exceptionOf(error));
}

function rethrowRecorded(error: unknown): never {
  recordException(error);
  throw error;
}

/** OpenTelemetry takes an Error or a string; a worker may throw anything. */
function exceptionOf(error: unknown): Error | string {
  return error instanceof Error ? error : errorText(error);
}
