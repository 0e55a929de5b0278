/**
 * OpenTelemetry tracing on Deno's built-in support (SPEC §13): a CONSUMER
 * span per delivery, PRODUCER spans for what a worker publishes and for dead
 * letters, and the W3C `traceparent` carried in JSON bodies.
 *
 * Deno exports spans only when started with `OTEL_DENO=true`; otherwise the
 * API's tracer is a no-op. `TRACING_ON` (observe/tracing_switch.ts) mirrors that switch, read
 * once at start, and the daemon builds an {@linkcode EntryTracer} only when
 * it is on: with tracing off the message path makes no span and allocates
 * nothing for tracing.
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
  type Tracer,
} from "@opentelemetry/api";
import type { EntryPublisher } from "../context/entry_context.ts";
import { errorText } from "../error_text.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { BatchSpan, BatchState, BatchTracing } from "../batch/batcher.ts";
import type { Outcome } from "../runner/outcome.ts";
import { formatTraceParent, traceParentOfBody, withTraceParent } from "../observe/trace_parent.ts";
import { VERSION } from "../version.ts";
import type { BatchResult, Message, PublishBody, WorkerDefinition } from "../worker/worker.ts";

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
  /** Default: the global tracer provider's (Deno's, with `OTEL_DENO=true`). */
  readonly tracer?: Tracer;
}

/** One entry's spans; made only when `TRACING_ON` (observe/tracing_switch.ts). */
export class EntryTracer {
  readonly #tracer: Tracer;
  readonly #options: EntryTracerOptions;
  readonly #topicPrefix: string;
  readonly #deliveryName: string;
  /** The attributes every CONSUMER span of the entry starts with. */
  readonly #processAttributes: Attributes;

  constructor(options: EntryTracerOptions) {
    this.#options = options;
    this.#tracer = options.tracer ?? trace.getTracer(TRACER_NAME, VERSION);
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
   * Starts the CONSUMER span of one delivery, a child of the `traceparent` in
   * its body when there is a valid one; null when the tracer fails, and then
   * the message goes on untraced.
   */
  start(message: Message): DeliverySpan | null {
    try {
      return this.#start(message);
    } catch {
      return null;
    }
  }

  #start(message: Message): DeliverySpan {
    const options = this.#options;
    let parent: Context = ROOT_CONTEXT;
    if (options.traceField !== null) {
      const found = traceParentOfBody(message.body, options.traceField);
      if (found === "invalid") options.onInvalidTraceParent();
      else if (found !== "absent") {
        const creation: SpanContext = { ...found, isRemote: true };
        parent = trace.setSpanContext(ROOT_CONTEXT, creation).setValue(CREATION_CONTEXT, creation);
      }
    }
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
   * item's own delivery span, so every item is reachable from its batch.
   * Each item keeps its delivery span with its own outcome; the batch's
   * span holds what the call did, and what it publishes is its child.
   */
  batches(): BatchTracing {
    return {
      link: (message) => itemLink(message),
      start: (links, items) => this.#startBatch(links, items),
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
   * `publisher` making a PRODUCER span for each `publish*` call and, with a
   * trace field, writing that span's `traceparent` into JSON object bodies.
   */
  publisher(publisher: EntryPublisher): EntryPublisher {
    const field = this.#options.traceField;
    const inject = (bodies: readonly PublishBody[], traceparent: string | null) =>
      field === null || traceparent === null
        ? bodies
        : bodies.map((body) => withTraceParent(body, field, traceparent));
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
   * Starts the PRODUCER span of a dead letter, a child of the active
   * (delivery) span; its `traceparent` goes into the envelope.
   */
  deadLetter(nsqTopic: string): SendSpan {
    return new SendSpan(this.#startSend(nsqTopic, 1, "publish", { "nsqworker.dead_letter": true }));
  }

  async #send(
    topic: string,
    count: number,
    operation: string,
    send: (traceparent: string | null) => Promise<void>,
  ): Promise<void> {
    const sendSpan = new SendSpan(this.#startSend(this.#topicPrefix + topic, count, operation));
    try {
      await send(sendSpan.traceparent);
    } catch (error) {
      sendSpan.end(error);
      throw error;
    }
    sendSpan.end();
  }

  #startSend(nsqTopic: string, count: number, operation: string, extra: Attributes = {}): Span {
    const attributes: Attributes = {
      "messaging.system": "nsq",
      "messaging.operation.type": "send",
      "messaging.operation.name": operation,
      "messaging.destination.name": nsqTopic,
      "nsqworker.worker": this.#options.worker,
      ...extra,
    };
    if (count !== 1) attributes["messaging.batch.message_count"] = count;
    return this.#tracer.startSpan(`${operation} ${nsqTopic}`, {
      kind: SpanKind.PRODUCER,
      attributes,
    }, context.active());
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

/** A PRODUCER span and the `traceparent` that its message carries. */
export class SendSpan {
  readonly #span: Span;
  /**
   * Written into the published body, so the receiver's span is this one's
   * child; null when the tracer is a no-op (`OTEL_DENO` set where Deno does
   * not export, as in a binary compiled without it).
   */
  readonly traceparent: string | null;

  constructor(span: Span) {
    this.#span = span;
    const spanContext = span.spanContext();
    this.traceparent = isSpanContextValid(spanContext) ? formatTraceParent(spanContext) : null;
  }

  /** Ends the span; with `error`, as failed. */
  end(error?: unknown): void {
    if (error !== undefined) {
      this.#span.recordException(exceptionOf(error));
      this.#span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(error) });
    }
    this.#span.end();
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
