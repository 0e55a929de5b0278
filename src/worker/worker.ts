/**
 * The contract between the daemon and a worker module: what a module under
 * `workers/` exports and what its handler receives.
 *
 * @module
 */

import type { StandardSchemaV1 } from "./standard_schema.ts";

/** Options handed to a worker: its own defaults merged with the entry's `options`. */
export type WorkerOptions = Record<string, unknown>;

/**
 * How the raw message body becomes the handler's `body`: `"json"` (the
 * default), `"text"` (UTF-8, invalid bytes are an error), `"bytes"` (as is),
 * or a function. A decode that throws sends the message to the dead letter
 * topic.
 */
// deno-lint-ignore no-explicit-any
export type Decode<T = any> = "json" | "text" | "bytes" | ((bytes: Uint8Array) => T);

/** The NSQ message being handled. */
export interface Message {
  /** The nsqd message id (16 characters, unique per nsqd topic). */
  readonly id: string;
  /** Delivery attempt, starting at 1. */
  readonly attempts: number;
  /** When nsqd received the message, in milliseconds since the epoch. */
  readonly timestamp: number;
  /** The raw body. */
  readonly body: Uint8Array;
}

/** A structured logger; `properties` become fields of the log record. */
export interface Logger {
  debug(message: string, properties?: Record<string, unknown>): void;
  info(message: string, properties?: Record<string, unknown>): void;
  warning(message: string, properties?: Record<string, unknown>): void;
  error(message: string, properties?: Record<string, unknown>): void;
}

/** What a worker can publish: bytes and strings go as they are, anything else as JSON. */
export type PublishBody = Uint8Array | string | unknown;

/** Publishing to nsqd (`nsq.publish_nsqd_tcp_address`; `topic_prefix` is applied). */
export interface Publisher {
  /** PUB one message; resolves once nsqd has accepted it. */
  publish(topic: string, body: PublishBody): Promise<void>;
  /** MPUB several messages atomically. */
  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void>;
  /** DPUB one message, delivered after `delayMs` milliseconds. */
  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void>;
}

/** What `setup()` and `teardown()` receive. */
export interface SetupContext<O extends WorkerOptions = WorkerOptions> extends Publisher {
  /** The topic as written in the config (without `topic_prefix`). */
  readonly topic: string;
  readonly channel: string;
  /** The worker name, e.g. `demo/pageview`. */
  readonly worker: string;
  readonly options: Readonly<O>;
  /** Bound to topic, channel and worker. */
  readonly log: Logger;
}

/** What `handle()` receives beside the decoded body. */
export interface WorkerContext<O extends WorkerOptions = WorkerOptions> extends SetupContext<O> {
  readonly message: Message;
  /** Aborted when the handler's `timeout` passes or a forced shutdown begins. */
  readonly signal: AbortSignal;
  /** Bound to topic, channel, worker, message id and attempts. */
  readonly log: Logger;
  /**
   * Resets nsqd's message timeout. The daemon already does this on its own
   * while the handler runs; call it only to be explicit.
   */
  touch(): void;
}

/** One message of a batch: its decoded body and the message it came in. */
// deno-lint-ignore no-explicit-any
export interface BatchItem<T = any> {
  readonly body: T;
  readonly message: Message;
}

/**
 * What `handleBatch()` may give for one item: `undefined` or `"finish"`
 * (FIN), an `Error` (retried with backoff) or a {@link PermanentError}
 * (dead-lettered at once).
 */
export type BatchResult = undefined | "finish" | Error;

/** What `handleBatch()` receives beside the items: `handle()`'s `ctx` without `message`. */
export interface BatchContext<O extends WorkerOptions = WorkerOptions> extends SetupContext<O> {
  /** Aborted when the batch's `timeout` passes or a forced shutdown begins. */
  readonly signal: AbortSignal;
  /**
   * Resets nsqd's message timeout of every item. The daemon already does
   * this on its own while the batch waits and runs.
   */
  touch(): void;
}

/**
 * A batch worker's defaults; an entry's `batch: { size, wait }` overrides
 * them. Without them a batch holds up to the entry's `max_in_flight` items
 * and waits 1 s.
 */
export interface BatchDefaults {
  /** The most items a batch holds; at most the entry's `max_in_flight`. */
  readonly size?: number;
  /** How long a batch may wait for more items after its first, in milliseconds. */
  readonly wait?: number;
}

/**
 * A worker module's default export: it has `handle` or `handleBatch`, not both.
 *
 * - `handle` returns (or resolves) → the message is finished;
 *   throws → retried with backoff, up to `max_attempts`, then dead-lettered;
 *   throws {@link PermanentError} → dead-lettered at once.
 * - `validate` returning false, or a body that fails `schema` →
 *   dead-lettered, not retried.
 * - `dedupeKey` → a message whose key was already handled is finished without
 *   running `handle`. Its keys are scoped to the entry, so it catches an event
 *   published twice. Returning `undefined` (or no `dedupeKey`) means the
 *   default key, the NSQ message id scoped to the nsqd that delivered it (it
 *   catches redeliveries after a lost FIN); `null` means no dedupe at all.
 */
// deno-lint-ignore no-explicit-any
export interface WorkerDefinition<T = any, O extends WorkerOptions = WorkerOptions> {
  /** Defaults of the worker's options; the entry's `options` are merged over them. */
  readonly options?: O;
  readonly decode?: Decode<T>;
  /**
   * A Standard Schema (zod, valibot, arktype…) for the decoded body: `body`
   * is typed as its output, and a body that fails it is dead-lettered with
   * each issue and its path. Its output value is what the handler receives.
   * Not together with `validate`.
   */
  readonly schema?: StandardSchemaV1<unknown, T>;
  readonly validate?: (body: T, message: Message) => boolean;
  readonly dedupeKey?: (body: T, message: Message) => string | number | null | undefined;
  /**
   * The key whose messages an entry with `key_concurrency: N` runs at most N
   * at a time (one at a time, in the order received, with 1): an account, a
   * document, a device. `null` or `undefined` leaves a message out of it. A
   * message whose key is busy waits in the daemon, TOUCHed, without failing.
   * A throw dead-letters the message (reason `order_key`).
   */
  readonly orderKey?: (body: T, message: Message) => string | number | null | undefined;
  /** Runs once before the consumer connects; a throw keeps this entry from starting. */
  readonly setup?: (ctx: SetupContext<O>) => void | Promise<void>;
  /** Handles one message. */
  readonly handle?: (body: T, ctx: WorkerContext<O>) => void | Promise<void>;
  /**
   * Handles a batch of messages instead of one: return nothing (every item
   * finished), throw (every item retried; a {@link PermanentError} dead-letters
   * every item) or return one {@link BatchResult} per item, in order.
   */
  readonly handleBatch?: (
    items: readonly BatchItem<T>[],
    ctx: BatchContext<O>,
  ) => void | readonly BatchResult[] | Promise<void | readonly BatchResult[]>;
  /** The batch size and wait of `handleBatch`, unless the entry sets them. */
  readonly batch?: BatchDefaults;
  /** Runs once after the consumer has drained. */
  readonly teardown?: (ctx: SetupContext<O>) => void | Promise<void>;
}

/**
 * Declares a worker. It only returns its argument, typed: the point is the
 * inference of `T` (the body) and `O` (the options) for the hooks.
 *
 * @example
 * ```ts
 * import { defineWorker } from "../../src/mod.ts";
 *
 * interface PageView { event_id: string; clicks: number }
 *
 * export default defineWorker<PageView>({
 *   validate: (body) => typeof body.clicks === "number",
 *   dedupeKey: (body) => body.event_id,
 *   async handle(body, ctx) {
 *     ctx.log.info("pageview", { clicks: body.clicks });
 *     await ctx.publish("pageviews.counted", { id: body.event_id });
 *   },
 * });
 * ```
 */
// deno-lint-ignore no-explicit-any
export function defineWorker<T = any, O extends WorkerOptions = WorkerOptions>(
  definition: WorkerDefinition<T, O>,
): WorkerDefinition<T, O> {
  return definition;
}
