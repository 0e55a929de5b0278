/**
 * One entry at run time, from its worker's `setup()` to its `teardown()`:
 * setup, running, drain and teardown of the parts that `buildEntryParts`
 * wires (its consumer hands each delivery to a `MessageHandoff`, which
 * answers it).
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import type { EntryContext } from "../context/entry_context.ts";
import { EntryStats } from "../observe/entry_stats.ts";
import type { Consumer } from "../nsq/consumer.ts";
import { describeError } from "../error_text.ts";
import type { BatchStats } from "../observe/batch_stats.ts";
import { DeadLetterRing } from "../observe/dead_letter_ring.ts";
import type { BoardEntry } from "../observe/stall_board.ts";
import { isLogged } from "../observe/log.ts";
import type { Batcher, BatchReport } from "../batch/batcher.ts";
import type { Logger } from "../worker/worker.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import type { ChildPool } from "../child/child_pool.ts";
import type { BreakerGuard } from "./breaker_guard.ts";
import type { RedisRateBucket } from "../dedupe/redis_rate_bucket.ts";
import { buildEntryParts } from "./entry_parts.ts";
import type { RunningEntryOptions } from "./running_entry_options.ts";

export type { RunningEntryOptions };

/** Where an entry is in its life. */
export type EntryState = "starting" | "running" | "failed" | "draining" | "stopped";

/** One entry: its consumer, task runner and executor of outcomes, and their life. */
export class RunningEntry {
  readonly entry: Entry;
  /** The entry's figures; in flight is the consumer's count. */
  readonly stats: EntryStats = new EntryStats(() => this.#consumer.inFlight);
  /** The last dead letters this entry wrote. */
  readonly deadLetters: DeadLetterRing = new DeadLetterRing();
  #log: Logger;
  #context: EntryContext;
  #consumer: Consumer;
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
    this.entry = options.entry;
    this.#log = options.log;
    const parts = buildEntryParts(options, {
      stats: this.stats,
      deadLetters: this.deadLetters,
      stop: this.#stop.signal,
      onBatch: (report) => this.#batchEnded(report),
      onAnswered: () => this.#answered(),
    });
    this.#board = parts.board;
    this.children = parts.children;
    this.#context = parts.context;
    this.#code = parts.code;
    this.#batchers = parts.batchers;
    this.batchStats = parts.batchStats;
    this.#sharedRate = parts.sharedRate;
    this.#consumer = parts.consumer;
    this.#breaker = parts.breaker;
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

  /** Wakes a shutdown waiting for the last message to be answered. */
  #answered(): void {
    if (this.#idle !== null && this.#consumer.inFlight === 0) this.#idle();
  }
}
