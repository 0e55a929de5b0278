/**
 * One entry at run time: its consumer feeds messages to its task runner, and
 * the outcome the runner decides is carried out here (FIN, REQ, dead
 * letter), counted and logged.
 *
 * @module
 */

import type { Entry, HostPort } from "./config/types.ts";
import type { DedupeStore } from "./dedupe/store.ts";
import { deadLetterEnvelope } from "./dead_letter.ts";
import { EntryStats } from "./entry_stats.ts";
import { boundLogger, isLogged } from "./log.ts";
import { Consumer, type ConsumerTimings } from "./nsq/consumer.ts";
import type { ConnectionOptions } from "./nsq/connection_options.ts";
import type { NsqMessage } from "./nsq/nsq_message.ts";
import { retryDelay } from "./runner/backoff.ts";
import { describeError, type Outcome, type StoreFailure } from "./runner/outcome.ts";
import { type TaskMessage, TaskRunner } from "./runner/task_runner.ts";
import type { LoadedWorker } from "./worker_loader.ts";
import type {
  Logger,
  Message,
  PublishBody,
  Publisher,
  SetupContext,
  WorkerContext,
} from "./worker.ts";

/** Publishing as an entry needs it: the worker's API, and raw topics for dead letters. */
export interface EntryPublisher extends Publisher {
  /** Publishes to a topic exactly as given (`topic_prefix` already applied). */
  publishRaw(nsqTopic: string, body: Uint8Array): Promise<void>;
}

/** What an entry needs from the daemon around it. */
export interface RunningEntryOptions {
  readonly entry: Entry;
  readonly worker: LoadedWorker;
  readonly store: DedupeStore;
  readonly publisher: EntryPublisher;
  readonly nsqdAddresses: readonly HostPort[];
  readonly lookupdUrls: readonly string[];
  readonly connection: ConnectionOptions;
  readonly log: Logger;
  readonly timings?: Partial<ConsumerTimings>;
}

/** Where an entry is in its life. */
export type EntryState = "starting" | "running" | "failed" | "draining" | "stopped";

/** The handler's `ctx`; the per-message logger is made only when asked for. */
class MessageContext implements WorkerContext {
  readonly message: Message;
  readonly signal: AbortSignal;
  #base: SetupContext;
  #task: TaskMessage;
  #log: Logger | null = null;

  constructor(base: SetupContext, task: TaskMessage, signal: AbortSignal) {
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
  publish(topic: string, body: PublishBody): Promise<void> {
    return this.#base.publish(topic, body);
  }
  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    return this.#base.publishMany(topic, bodies);
  }
  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    return this.#base.publishDeferred(topic, body, delayMs);
  }
}

/** One entry: consumer, task runner and the outcomes' execution. */
export class RunningEntry {
  readonly entry: Entry;
  readonly stats = new EntryStats();
  #options: RunningEntryOptions;
  #log: Logger;
  #context: SetupContext;
  #consumer: Consumer;
  #runner: TaskRunner;
  #state: EntryState = "starting";
  #failure: string | null = null;
  #stop = new AbortController();
  #idle: (() => void) | null = null;
  #stopping: Promise<void> | null = null;
  #setUp = false;
  #tornDown = false;

  constructor(options: RunningEntryOptions) {
    const { entry, worker, publisher } = options;
    this.entry = entry;
    this.#options = options;
    this.#log = options.log;
    this.#context = {
      topic: entry.topic,
      channel: entry.channel,
      worker: worker.name,
      options: worker.options,
      log: options.log,
      publish: (topic, body) => publisher.publish(topic, body),
      publishMany: (topic, bodies) => publisher.publishMany(topic, bodies),
      publishDeferred: (topic, body, delayMs) => publisher.publishDeferred(topic, body, delayMs),
    };
    this.#runner = new TaskRunner({
      worker: worker.definition,
      scope: `${entry.nsqTopic}/${entry.channel}`,
      settings: entry,
      store: options.store,
      context: (task, signal) => new MessageContext(this.#context, task, signal),
    });
    this.#consumer = new Consumer({
      topic: entry.nsqTopic,
      channel: entry.channel,
      maxInFlight: entry.maxInFlight,
      rateLimit: entry.rateLimit,
      nsqdAddresses: options.nsqdAddresses,
      lookupdUrls: options.lookupdUrls,
      connection: options.connection,
      log: options.log,
      onMessage: (message) => this.#receive(message),
      ...(options.timings ? { timings: options.timings } : {}),
    });
  }

  /** Where the entry is in its life. */
  get state(): EntryState {
    return this.#state;
  }

  /** Why the entry failed to start, when it did. */
  get failure(): string | null {
    return this.#failure;
  }

  /** The consumer's connections. */
  get consumer(): Consumer {
    return this.#consumer;
  }

  /**
   * Runs the worker's `setup()`, then connects. A failing setup leaves this
   * entry in state `failed` (logged); it never throws.
   */
  async start(): Promise<void> {
    const setup = this.#options.worker.definition.setup;
    try {
      await setup?.(this.#context);
    } catch (error) {
      this.#state = "failed";
      this.#failure = `setup() failed: ${describeError(error)}`;
      this.#log.error("entry not started", { error: this.#failure });
      return;
    }
    this.#setUp = true;
    // Stopped while setup() ran: what it set up is torn down all the same.
    if (this.#stopping) {
      await this.#stopping;
      await this.#teardown();
      return;
    }
    this.#state = "running";
    this.#consumer.start();
  }

  /** Runs the worker's `teardown()` once, if its `setup()` succeeded. */
  async #teardown(): Promise<void> {
    if (!this.#setUp || this.#tornDown) return;
    this.#tornDown = true;
    try {
      await this.#options.worker.definition.teardown?.(this.#context);
    } catch (error) {
      this.#log.error("teardown() failed", { error: describeError(error) });
    }
  }

  /**
   * Stops taking messages (RDY 0, CLS), lets in-flight handlers finish for
   * up to `timeoutMs`, aborts and requeues the rest, closes the connections,
   * then runs the worker's `teardown()`. Safe to call more than once.
   */
  stop(timeoutMs: number): Promise<void> {
    return this.#stopping ??= this.#shutdown(timeoutMs);
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#state = "draining";
    const deadline = Date.now() + timeoutMs;
    await this.#consumer.drain(Math.min(timeoutMs, 2000) || 1);
    if (!(await this.#whenIdle(deadline - Date.now()))) {
      this.#log.warning("handlers still running after the shutdown timeout: aborting them", {
        in_flight: this.stats.inFlight,
      });
      this.#stop.abort(new DOMException("the daemon is shutting down", "AbortError"));
      // Aborted handlers resolve at once as `interrupted` (REQ 0); only a
      // dead letter still being published can hold this up.
      await this.#whenIdle(5000);
    }
    await this.#consumer.close();
    await this.#teardown();
    this.#state = "stopped";
  }

  #whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.stats.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = null;
        resolve(false);
      }, Math.max(0, timeoutMs));
      this.#idle = () => {
        clearTimeout(timer);
        this.#idle = null;
        resolve(true);
      };
    });
  }

  #receive(message: NsqMessage): void {
    this.stats.inFlight++;
    this.#runner.run(message, this.#stop.signal).then(
      (outcome) => this.#carryOut(message, outcome),
      // run() never rejects; were it to, the message must still get an answer.
      (error) =>
        this.#carryOut(message, {
          kind: "retry",
          delayMs: this.entry.requeueDelayMs,
          error: describeError(error),
          durationMs: null,
        }),
    ).finally(() => {
      this.stats.inFlight--;
      if (this.stats.inFlight === 0) this.#idle?.();
    });
  }

  async #carryOut(message: NsqMessage, outcome: Outcome): Promise<void> {
    this.stats.record(outcome);
    const storeFailure = storeFailureOf(outcome);
    if (storeFailure?.bypassed) {
      this.#log.warning(
        "dedupe store failed; handled without dedupe",
        this.#fields(message, outcome),
      );
    }
    switch (outcome.kind) {
      case "finish":
        message.finish();
        if (isLogged("debug")) this.#log.debug("finished", this.#fields(message, outcome));
        return;
      case "duplicate":
        message.finish();
        this.#log.info("duplicate: already handled", this.#fields(message, outcome));
        return;
      case "busy":
        message.requeue(outcome.delayMs);
        this.#log.info(
          "busy: its key is being handled elsewhere; requeued",
          this.#fields(message, outcome),
        );
        return;
      case "retry":
        message.requeue(outcome.delayMs);
        this.#log.warning(
          storeFailure && !storeFailure.bypassed
            ? "dedupe store failed; requeued until it answers"
            : "handler failed; requeued for a retry",
          this.#fields(message, outcome),
        );
        return;
      case "interrupted":
        message.requeue(0);
        this.#log.info("interrupted by shutdown; requeued", this.#fields(message, outcome));
        return;
      case "dead":
        await this.#deadLetter(message, outcome);
        return;
    }
  }

  async #deadLetter(message: NsqMessage, outcome: Outcome & { kind: "dead" }): Promise<void> {
    const { entry } = this;
    const fields = this.#fields(message, outcome);
    if (entry.deadLetterTopic === null) {
      message.finish();
      this.#log.error("dead; dead letters are off", fields);
      return;
    }
    const envelope = deadLetterEnvelope({
      topic: entry.nsqTopic,
      channel: entry.channel,
      worker: entry.worker,
      message,
      reason: outcome.reason,
      error: outcome.error,
    });
    try {
      await this.#options.publisher.publishRaw(entry.deadLetterTopic, envelope);
    } catch (error) {
      this.stats.deadLetterFailures++;
      // The entry's backoff: when it comes back its handler is not run again
      // (attempts are beyond max_attempts), only this publish is retried.
      const delayMs = retryDelay(message.attempts, entry.requeueDelayMs, entry.maxRequeueDelayMs);
      message.requeue(delayMs);
      this.#log.error("dead, but publishing the dead letter failed; requeued", {
        ...fields,
        delay_ms: delayMs,
        publish_error: describeError(error),
      });
      return;
    }
    message.finish();
    this.#log.error("dead; sent to the dead letter topic", {
      ...fields,
      dead_letter_topic: entry.deadLetterTopic,
    });
  }

  #fields(message: NsqMessage, outcome: Outcome): Record<string, unknown> {
    const fields: Record<string, unknown> = {
      msg_id: message.id,
      attempts: message.attempts,
      outcome: outcome.kind,
    };
    if ("durationMs" in outcome && outcome.durationMs !== null) {
      // Hundredths of a millisecond are plenty in a log line; metrics keep it all.
      fields.duration_ms = Math.round(outcome.durationMs * 100) / 100;
    }
    if ("delayMs" in outcome) fields.delay_ms = outcome.delayMs;
    if ("error" in outcome) fields.error = outcome.error;
    if ("reason" in outcome) fields.reason = outcome.reason;
    const storeFailure = storeFailureOf(outcome);
    if (storeFailure !== undefined) {
      fields.store_error = storeFailure.error;
      if (storeFailure.bypassed) fields.dedupe = "bypassed";
    }
    return fields;
  }
}

function storeFailureOf(outcome: Outcome): StoreFailure | undefined {
  return (outcome as { readonly storeFailure?: StoreFailure }).storeFailure;
}
