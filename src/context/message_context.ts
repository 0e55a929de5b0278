/**
 * The `ctx` a worker's `handle()` receives.
 *
 * @module
 */

import { type EntryContext, ForwardingPublisher } from "./entry_context.ts";
import { boundLogger } from "../observe/log.ts";
import type { TaskMessage } from "../runner/task_runner.ts";
import type { Logger, Message, Publisher, WorkerContext } from "../worker/worker.ts";

/**
 * A handler's `ctx`: the entry's context plus the message, its signal and
 * `touch`. The per-message logger is made only when asked for, and
 * publishing goes straight to the entry's publisher.
 */
export class MessageContext extends ForwardingPublisher implements WorkerContext {
  readonly message: Message;
  readonly signal: AbortSignal;
  readonly #base: EntryContext;
  readonly #task: TaskMessage;
  #log: Logger | null = null;

  constructor(base: EntryContext, task: TaskMessage, signal: AbortSignal) {
    super();
    this.#base = base;
    this.#task = task;
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
  protected get target(): Publisher {
    return this.#base.publisher;
  }
}
