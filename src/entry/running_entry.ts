/**
 * One entry at run time, from its worker's `setup()` to its `teardown()`:
 * its consumer feeds messages to its task runner, and each outcome goes to
 * its {@linkcode OutcomeExecutor}.
 *
 * @module
 */

import type { Entry, HostPort } from "../config/types.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import type { EntryContext, EntryPublisher } from "../context/entry_context.ts";
import { EntryStats } from "../observe/entry_stats.ts";
import { Consumer, type ConsumerTimings } from "../nsq/consumer.ts";
import type { ConnectionOptions } from "../nsq/connection_options.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import { OutcomeExecutor } from "./outcome_executor.ts";
import { describeError } from "../error_text.ts";
import type { Outcome } from "../runner/outcome.ts";
import type { TaskRunner } from "../runner/task_runner.ts";
import { type DeliverySpan, EntryTracer } from "./tracing.ts";
import { TRACING_ON } from "../observe/tracing_switch.ts";
import { BatchStats } from "../observe/batch_stats.ts";
import { type BoardEntry, StallBoard } from "../observe/stall_board.ts";
import { isLogged } from "../observe/log.ts";
import type { Batcher, BatchReport } from "../batch/batcher.ts";
import { createMessagePath } from "./message_path.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import type { Logger } from "../worker/worker.ts";

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
  /**
   * Where the entry tells the stall watchdog what it starts and what it has
   * in flight; by default a board that no watchdog reads.
   */
  readonly board?: StallBoard;
}

/** Where an entry is in its life. */
export type EntryState = "starting" | "running" | "failed" | "draining" | "stopped";

/** One entry: its consumer, task runner and executor of outcomes, and their life. */
export class RunningEntry {
  readonly entry: Entry;
  /** The entry's figures; in flight is the consumer's count. */
  readonly stats: EntryStats = new EntryStats(() => this.#consumer.inFlight);
  #options: RunningEntryOptions;
  #log: Logger;
  #context: EntryContext;
  #consumer: Consumer;
  #runner: TaskRunner;
  #executor: OutcomeExecutor;
  /** Null when tracing is off: then the message path makes no span. */
  #tracer: EntryTracer | null;
  /** Null unless the worker has `handleBatch`. */
  #batcher: Batcher | null;
  /** The batch figures; null unless the worker has `handleBatch`. */
  readonly batchStats: BatchStats | null;
  #state: EntryState = "starting";
  #failure: string | null = null;
  #stop = new AbortController();
  #idle: (() => void) | null = null;
  #stopping: Promise<void> | null = null;
  #setUp = false;
  #tornDown = false;
  /** This entry on the stall watchdog's board. */
  readonly #board: BoardEntry;

  constructor(options: RunningEntryOptions) {
    const { entry, worker, publisher } = options;
    this.entry = entry;
    this.#options = options;
    this.#log = options.log;
    this.#board = (options.board ?? new StallBoard()).entry({
      topic: entry.topic,
      channel: entry.channel,
      worker: entry.worker,
    });
    const tracer = TRACING_ON
      ? new EntryTracer({
        topic: entry.topic,
        nsqTopic: entry.nsqTopic,
        channel: entry.channel,
        worker: worker.name,
        traceField: entry.traceField,
        onInvalidTraceParent: () => this.stats.invalidTraceParents++,
        publisher,
      })
      : null;
    this.#tracer = tracer;
    this.#executor = new OutcomeExecutor({
      entry,
      stats: this.stats,
      log: options.log,
      publisher,
      tracer,
    });
    const path = createMessagePath({
      entry,
      worker,
      store: options.store,
      publisher,
      log: options.log,
      tracer,
      onBatch: (report) => this.#batchEnded(report),
    });
    this.#context = path.context;
    this.#runner = path.runner;
    this.#batcher = path.batcher;
    this.batchStats = path.batch && new BatchStats(path.batch.size, path.batch.waitMs);
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
      this.#board.entered("setup");
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
      this.#board.entered("teardown");
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
    this.#batcher?.drain();
    await this.#consumer.drain(Math.min(timeoutMs, 2000) || 1);
    if (!(await this.#whenIdle(deadline - Date.now()))) {
      this.#log.warning("handlers still running after the shutdown timeout: aborting them", {
        in_flight: this.#consumer.inFlight,
      });
      this.#stop.abort(new DOMException("the daemon is shutting down", "AbortError"));
      // Aborted handlers resolve at once as `interrupted` (REQ 0); only a
      // dead letter still being published can hold this up.
      await this.#whenIdle(5000);
    }
    await this.#consumer.close();
    await this.#teardown();
    this.#board.leave();
    this.#state = "stopped";
  }

  #whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.#consumer.inFlight === 0) return Promise.resolve(true);
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

  #batchEnded(report: BatchReport): void {
    this.batchStats?.record(report.items, report.durationMs);
    if (!isLogged("debug")) return;
    this.#log.debug("batch handled", {
      items: report.items,
      duration_ms: Math.round(report.durationMs * 100) / 100,
      result: report.state,
    });
  }

  #receive(message: NsqMessage): void {
    this.#board.started(message);
    const span = this.#tracer === null ? null : this.#tracer.start(message);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = span === null
        ? this.#runner.run(message, this.#stop.signal)
        : span.run(() => this.#runner.run(message, this.#stop.signal));
    } catch (error) {
      outcome = this.#unexpected(error);
    }
    if (outcome instanceof Promise) {
      // Listed at each heartbeat until its outcome comes: a handler that
      // resumes into an endless loop is among these.
      const inFlight = this.#board.inFlight;
      inFlight.add(message);
      outcome.then(
        (outcome) => {
          inFlight.delete(message);
          this.#answer(message, outcome, span);
        },
        (error) => {
          inFlight.delete(message);
          this.#answer(message, this.#unexpected(error), span);
        },
      );
    } else {
      this.#answer(message, outcome, span);
    }
  }

  /** run() never throws or rejects; were it to, the message must still get an answer. */
  #unexpected(error: unknown): Outcome {
    return {
      kind: "retry",
      delayMs: this.entry.requeueDelayMs,
      error: describeError(error),
      durationMs: null,
    };
  }

  /** With a span, the outcome is carried out inside it (a dead letter's span is its child), then it ends. */
  #answer(message: NsqMessage, outcome: Outcome, span: DeliverySpan | null): void {
    let pending: void | Promise<void>;
    try {
      pending = span === null
        ? this.#executor.carryOut(message, outcome)
        : span.run(() => this.#executor.carryOut(message, outcome));
    } catch (error) {
      span?.end(outcome);
      this.#failedToAnswer(message, error);
      return;
    }
    if (pending instanceof Promise) {
      pending.then(() => {
        span?.end(outcome);
        this.#answered();
      }, (error) => {
        span?.end(outcome);
        this.#failedToAnswer(message, error);
      });
    } else {
      span?.end(outcome);
      this.#answered();
    }
  }

  /** Whatever went wrong, the message is answered (a no-op when it was) and the entry goes on. */
  #failedToAnswer(message: NsqMessage, error: unknown): void {
    message.requeue(this.entry.requeueDelayMs);
    this.#log.error("carrying out an outcome failed; requeued", {
      msg_id: message.id,
      error: describeError(error),
    });
    this.#answered();
  }

  /** Wakes a shutdown waiting for the last message to be answered. */
  #answered(): void {
    if (this.#idle !== null && this.#consumer.inFlight === 0) this.#idle();
  }
}
