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
import { requeueDelay } from "../runner/requeue_delay.ts";
import type { TaskRunner } from "../runner/task_runner.ts";
import type { DeliverySpan } from "./tracing/delivery_span.ts";
import { EntryTracer } from "./tracing/entry_tracer.ts";
import { TRACING_ON } from "../observe/tracing_switch.ts";
import { BatchStats } from "../observe/batch_stats.ts";
import { DeadLetterRing } from "../observe/dead_letter_ring.ts";
import { type BoardEntry, StallBoard } from "../observe/stall_board.ts";
import { isLogged } from "../observe/log.ts";
import type { Batcher, BatchReport } from "../batch/batcher.ts";
import { createMessagePath } from "./message_path.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import type { Logger } from "../worker/worker.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import { ChildPool } from "../child/child_pool.ts";
import { type ChildProgram, currentChildProgram } from "../child/child_program.ts";
import { LOG_LEVELS } from "../child/protocol.ts";
import { WORKERS_DIR } from "../worker/worker_loader.ts";
import { BreakerGuard } from "./breaker_guard.ts";
import { sharedRate } from "./shared_rate.ts";
import type { RedisRateBucket } from "../dedupe/redis_rate_bucket.ts";

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
   * How a child process is started, for an entry with `processes`; by
   * default this program's own command line (see `currentChildProgram`).
   */
  readonly childProgram?: ChildProgram;
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
  /** The last dead letters this entry wrote. */
  readonly deadLetters: DeadLetterRing = new DeadLetterRing();
  #options: RunningEntryOptions;
  #log: Logger;
  #context: EntryContext;
  #consumer: Consumer;
  #runner: TaskRunner;
  #executor: OutcomeExecutor;
  /** Null when tracing is off: then the message path makes no span. */
  #tracer: EntryTracer | null;
  /** Where the worker's code runs. */
  #code: WorkerCode;
  /** Empty unless the worker has `handleBatch`. */
  #batchers: readonly Batcher[];
  /** The batch figures; null unless the worker has `handleBatch`. */
  readonly batchStats: BatchStats | null;
  /** The child processes that run the worker; null with `processes: 0`. */
  readonly children: ChildPool | null;
  /** Null unless the entry has a `breaker`. */
  readonly #breaker: BreakerGuard | null;
  /** The rate kept with the entry's other processes; null unless `rate_limit` is shared. */
  readonly #sharedRate: RedisRateBucket | null;
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
    this.children = entry.processes === 0 ? null : new ChildPool({
      processes: entry.processes,
      program: options.childProgram ?? currentChildProgram(WORKERS_DIR),
      init: {
        worker: worker.name,
        options: entry.options,
        topic: entry.topic,
        channel: entry.channel,
        logLevel: LOG_LEVELS.find((level) => isLogged(level)) ?? "error",
      },
      timeoutMs: entry.timeoutMs,
      killGraceMs: entry.killGraceMs,
      memoryLimitMib: entry.memoryLimitMib,
      log: options.log,
    });
    this.#executor = new OutcomeExecutor({
      entry,
      stats: this.stats,
      log: options.log,
      publisher,
      tracer,
      deadLetters: this.deadLetters,
    });
    const path = createMessagePath({
      entry,
      worker,
      store: options.store,
      publisher,
      log: options.log,
      tracer,
      onBatch: (report) => this.#batchEnded(report),
      ...(this.children === null ? {} : { code: this.children }),
    });
    this.#context = path.context;
    this.#runner = path.runner;
    this.#code = path.code;
    this.#batchers = path.batchers;
    this.batchStats = path.batch && new BatchStats(path.batch.size, path.batch.waitMs);
    this.#sharedRate = sharedRate(entry, options.store, options.log);
    this.#consumer = new Consumer({
      topic: entry.nsqTopic,
      channel: entry.channel,
      maxInFlight: entry.maxInFlight,
      rateLimit: entry.rateLimit,
      ...(this.#sharedRate === null ? {} : { rateBucket: this.#sharedRate }),
      nsqdAddresses: options.nsqdAddresses,
      lookupdUrls: options.lookupdUrls,
      connection: options.connection,
      log: options.log,
      onMessage: (message) => this.#receive(message),
      ...(options.timings ? { timings: options.timings } : {}),
    });
    this.#breaker = entry.breaker && new BreakerGuard({
      settings: entry.breaker,
      requeue: entry,
      consumer: this.#consumer,
      log: options.log,
    });
  }

  /** The entry's circuit breaker; null without `breaker`. */
  get breaker(): BreakerGuard | null {
    return this.#breaker;
  }

  /** Whether a shared rate limit is kept in redis now (false while falling back); null unless shared. */
  get rateShared(): boolean | null {
    return this.#sharedRate?.shared ?? null;
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
    try {
      this.#board.entered("setup");
      await this.#code.setup(this.#context);
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
      await this.#code.teardown(this.#context);
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
    this.#breaker?.close();
    const deadline = Date.now() + timeoutMs;
    for (const batcher of this.#batchers) batcher.drain();
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
    if (this.#breaker?.refuse(message)) return this.#answered();
    this.#board.started(message);
    const span = this.#tracer === null ? null : this.#tracer.start(message);
    const task = this.#breaker === null ? message : this.#breaker.task(message);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = span === null
        ? this.#runner.run(task, this.#stop.signal)
        : span.run(() => this.#runner.run(task, this.#stop.signal));
    } catch (error) {
      outcome = this.#unexpected(message, error);
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
          this.#answer(message, this.#unexpected(message, error), span);
        },
      );
    } else {
      this.#answer(message, outcome, span);
    }
  }

  /** run() never throws or rejects; were it to, the message must still get an answer. */
  #unexpected(message: NsqMessage, error: unknown): Outcome {
    return {
      kind: "retry",
      delayMs: requeueDelay("fault", message.attempts, this.entry),
      error: describeError(error),
      durationMs: null,
    };
  }

  /** With a span, the outcome is carried out inside it (a dead letter's span is its child), then it ends. */
  #answer(message: NsqMessage, outcome: Outcome, span: DeliverySpan | null): void {
    if (this.#breaker !== null) outcome = this.#breaker.settle(message, outcome);
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
    message.requeue(requeueDelay("fault", message.attempts, this.entry));
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
