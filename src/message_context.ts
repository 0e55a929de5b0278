/**
 * The `ctx` a worker's `handle()` receives.
 *
 * @module
 */

import type { EntryContext } from "./entry_context.ts";
import { boundLogger } from "./log.ts";
import type { TaskMessage } from "./runner/task_runner.ts";
import type { Logger, Message, PublishBody, Publisher, WorkerContext } from "./worker.ts";

/**
 * A handler's `ctx`: the entry's context plus the message, its signal and
 * `touch`. The per-message logger is made only when asked for, and
 * publishing goes straight to the entry's publisher, or to the one
 * `publisherOf` gives for this message at its first publish (an unsampled
 * delivery's, which hands its trace on).
 */
export class MessageContext implements WorkerContext {
  readonly message: Message;
  readonly signal: AbortSignal;
  readonly #base: EntryContext;
  readonly #task: TaskMessage;
  readonly #publisherOf: ((message: TaskMessage) => Publisher | undefined) | undefined;
  #publisher: Publisher | null = null;
  #log: Logger | null = null;

  constructor(
    base: EntryContext,
    task: TaskMessage,
    signal: AbortSignal,
    publisherOf?: (message: TaskMessage) => Publisher | undefined,
  ) {
    this.#base = base;
    this.#task = task;
    this.#publisherOf = publisherOf;
    this.message = task;
    this.signal = signal;
  }
  get topic(): string {
    return this.#base.topic;
  }
  get channel(): string {
    return this.#base.channel;
  }
  get worker(): string {
    return this.#base.worker;
  }
  get options(): Readonly<Record<string, unknown>> {
    return this.#base.options;
  }
  get log(): Logger {
    return this.#log ??= boundLogger(this.#base.log, {
      msg_id: this.#task.id,
      attempts: this.#task.attempts,
    });
  }
  touch(): void {
    this.#task.touch();
  }
  publish(topic: string, body: PublishBody): Promise<void> {
    return this.#target().publish(topic, body);
  }
  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    return this.#target().publishMany(topic, bodies);
  }
  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    return this.#target().publishDeferred(topic, body, delayMs);
  }
  #target(): Publisher {
    return this.#publisher ??= this.#publisherOf?.(this.#task) ?? this.#base.publisher;
  }
}
