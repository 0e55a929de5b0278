/**
 * Gathers the messages of a batch worker into batches and runs its
 * `handleBatch` on them. Each message arrives here only after the task
 * runner has decoded, validated and claimed it; each leaves with its own
 * outcome, decided by the runner as for a message run alone.
 *
 * @module
 */

import type { DedupeStore } from "../dedupe/store.ts";
import { describeError } from "../error_text.ts";
import type { Outcome } from "../runner/outcome.ts";
import type {
  BatchContext,
  BatchItem,
  BatchResult,
  Logger,
  Message,
  WorkerDefinition,
} from "../worker/worker.ts";
import { readNow, turnNow } from "../runner/clock.ts";
import { Deadline } from "../runner/deadline.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { Attempt } from "../runner/task_runner.ts";
import { type Timed, TimerQueue } from "../runner/timer_queue.ts";

/** How a whole batch ended. */
export type BatchState = "returned" | "threw" | "timed_out" | "stopped";

/** One batch, as counted and logged once it has ended. */
export interface BatchReport {
  readonly items: number;
  readonly durationMs: number;
  readonly state: BatchState;
}

/**
 * How batches are traced (SPEC §13); absent when tracing is off, and then
 * the batch path does no tracing work at all.
 */
export interface BatchTracing {
  /**
   * Called as a message joins, while its delivery's context is active:
   * what the span of its batch links to for it (null: no link).
   */
  link(message: Message): unknown;
  /** Starts the span of a batch of `items`, given their `link()` values. */
  start(links: readonly unknown[], items: number): BatchSpan;
}

/** The span of one running batch. */
export interface BatchSpan {
  /** Runs `work` (the `handleBatch` call) with the span active. */
  run<T>(work: () => T): T;
  /**
   * Ends the span once the batch has ended as `state` (`error` failed it);
   * `results` are the per-item results when it returned them. Never throws.
   */
  end(state: BatchState, error: unknown, results: readonly (BatchResult | Error)[] | null): void;
}

/** Options of {@linkcode Batcher}. */
export interface BatcherOptions {
  /** The worker's `handleBatch`. */
  readonly handleBatch: NonNullable<WorkerDefinition["handleBatch"]>;
  /** The most items a batch holds. */
  readonly size: number;
  /** How long a batch waits for more items after its first, in milliseconds. */
  readonly waitMs: number;
  /** The deadline of one `handleBatch` call, in milliseconds. */
  readonly timeoutMs: number;
  /** The dedupe store whose claims are renewed while their messages wait and run. */
  readonly store: DedupeStore;
  /** The outcome of one item once its batch has ended (`TaskRunner.settle`). */
  readonly settle: (
    attempt: Attempt,
    state: BatchState,
    error: unknown,
    durationMs: number,
  ) => Outcome | Promise<Outcome>;
  /** Builds a batch's `ctx`; `touch` touches every item. */
  readonly context: (touch: () => void, signal: AbortSignal) => BatchContext;
  /** Told of every batch that ended. */
  readonly onBatch: (report: BatchReport) => void;
  /** Where a worker bug (a wrong number of results) is logged. */
  readonly log: Logger;
  /** The clock, in milliseconds (default `performance.now()`). */
  readonly now?: () => number;
  /** Traces each batch; absent or null when tracing is off. */
  readonly tracing?: BatchTracing | null;
}

/** A message waiting for its batch to end, and how to hand it its outcome. */
interface Joined {
  readonly attempt: Attempt;
  readonly resolve: (outcome: Outcome | Promise<Outcome>) => void;
  /** What the batch's span links to for this item; null when tracing is off. */
  readonly link: unknown;
}

/** The batch being filled; its own timer item, due at its next touch or the end of its wait. */
class Filling implements Timed {
  due = 0;
  slot = -1;
  readonly items: Joined[] = [];
  /** The end of the wait, on the batcher's clock. */
  handOverAt: number;
  /** Half of the shortest message timeout of its items. */
  periodMs = Infinity;
  lastTouchAt: number;
  readonly #onDue: (batch: Filling, now: number) => void;

  constructor(startedAt: number, waitMs: number, onDue: (batch: Filling, now: number) => void) {
    this.handOverAt = startedAt + waitMs;
    this.lastTouchAt = startedAt;
    this.#onDue = onDue;
  }

  fire(now: number): void {
    this.#onDue(this, now);
  }
}

/**
 * One entry's batches: a batch is handed to `handleBatch` when it holds
 * `size` items, when `waitMs` has passed since its first item, or at once
 * once the entry drains. Waiting and running items are touched at half of
 * nsqd's message timeout, and their dedupe claims renewed with them.
 */
export class Batcher {
  readonly #options: BatcherOptions;
  readonly #now: () => number;
  readonly #read: () => number;
  readonly #timers: TimerQueue;
  readonly #tracing: BatchTracing | null;
  #filling: Filling | null = null;
  #waitMs: number;
  #running = 0;
  readonly #onDue = (batch: Filling, now: number) => this.#due(batch, now);

  constructor(options: BatcherOptions) {
    this.#options = options;
    this.#now = options.now ?? turnNow;
    this.#read = options.now ?? readNow;
    this.#timers = new TimerQueue({ now: this.#now, read: this.#read });
    this.#waitMs = options.waitMs;
    this.#tracing = options.tracing ?? null;
  }

  /** Batches handed over and not yet ended. */
  get running(): number {
    return this.#running;
  }

  /** Adds a claimed message to the batch being filled; resolves with its outcome. */
  join(attempt: Attempt): Promise<Outcome> {
    const { promise, resolve } = Promise.withResolvers<Outcome>();
    let batch = this.#filling;
    if (batch === null) {
      batch = new Filling(this.#now(), this.#waitMs, this.#onDue);
      this.#filling = batch;
    }
    const link = this.#tracing === null ? null : this.#tracing.link(attempt.message);
    batch.items.push({ attempt, resolve, link });
    batch.periodMs = Math.min(batch.periodMs, Math.floor(attempt.message.msgTimeoutMs / 2));
    if (batch.items.length >= this.#options.size) {
      this.#handOver(batch);
    } else {
      this.#schedule(batch);
    }
    return promise;
  }

  /**
   * The entry drains: the batch being filled is handed over now, and every
   * message that still arrives goes in a batch handed over without waiting.
   */
  drain(): void {
    this.#waitMs = 0;
    const batch = this.#filling;
    if (batch !== null) this.#handOver(batch);
  }

  #schedule(batch: Filling): void {
    this.#timers.remove(batch);
    const touchAt = batch.lastTouchAt + Math.max(1, batch.periodMs);
    this.#timers.add(batch, Math.min(batch.handOverAt, touchAt));
  }

  #due(batch: Filling, now: number): void {
    if (batch !== this.#filling) return;
    if (now >= batch.handOverAt) {
      this.#handOver(batch);
      return;
    }
    this.#touch(batch.items);
    batch.lastTouchAt = now;
    this.#schedule(batch);
  }

  #handOver(batch: Filling): void {
    this.#timers.remove(batch);
    this.#filling = null;
    // The batch's own touches start a period from now: the last one must not be a period old already.
    if (this.#read() - batch.lastTouchAt >= batch.periodMs / 2) this.#touch(batch.items);
    this.#running++;
    this.#run(batch.items, batch.periodMs).finally(() => this.#running--);
  }

  /** TOUCHes every item and renews its claim. */
  #touch(items: readonly Joined[]): void {
    const store = this.#options.store;
    for (const { attempt } of items) {
      try {
        attempt.message.touch();
      } catch {
        // A closed connection: nsqd redelivers the message, nothing to save here.
      }
      if (attempt.key === null || attempt.token === null) continue;
      try {
        const pending = store.renew(attempt.scope, attempt.key, attempt.token, attempt.leaseMs);
        if (pending instanceof Promise) pending.catch(ignore);
      } catch {
        // A lost renewal only lets the lease lapse; the next touch tries again.
      }
    }
  }

  async #run(joined: readonly Joined[], periodMs: number): Promise<void> {
    const options = this.#options;
    const items: BatchItem[] = joined.map(({ attempt }) => ({
      body: attempt.body,
      message: attempt.message,
    }));
    const touch = () => this.#touch(joined);
    const controller = new AbortController();
    const stop = joined[0]!.attempt.stop;
    const span = this.#tracing === null
      ? null
      : this.#tracing.start(joined.map((item) => item.link), joined.length);
    const startedAt = this.#now();
    let state: BatchState = "returned";
    let error: unknown = undefined;
    let results: unknown = undefined;
    try {
      const ctx = options.context(touch, controller.signal);
      const returned = span === null
        ? options.handleBatch(items, ctx)
        : span.run(() => options.handleBatch(items, ctx));
      if (isPromiseLike(returned)) {
        const deadline = new Deadline({
          timers: this.#timers,
          startedAt,
          timeoutMs: options.timeoutMs,
          periodMs: periodMs < options.timeoutMs ? Math.max(1, periodMs) : options.timeoutMs,
          message: { touch },
          lease: null,
          stop,
        });
        deadline.watch(
          Promise.resolve(returned).then((value) => {
            results = value;
          }),
        );
        await deadline.settled.promise;
        state = deadline.state as BatchState;
        error = deadline.error;
      } else {
        results = returned;
      }
    } catch (thrown) {
      state = "threw";
      error = thrown;
    }
    if (state === "timed_out") {
      error = new DOMException(
        `handleBatch timed out after ${options.timeoutMs}ms`,
        "TimeoutError",
      );
      controller.abort(error);
    } else if (state === "stopped") {
      controller.abort(stop?.reason);
    }
    const durationMs = this.#read() - startedAt;
    const each = state === "returned" ? this.#results(results, joined.length) : null;
    span?.end(state, error, each);
    for (const [i, { attempt, resolve }] of joined.entries()) {
      const result = each === null ? undefined : each[i];
      try {
        if (result instanceof Error) {
          resolve(options.settle(attempt, "threw", result, durationMs));
        } else {
          resolve(options.settle(attempt, state, error, durationMs));
        }
      } catch (failure) {
        resolve(Promise.reject(failure));
      }
    }
    options.onBatch({ items: joined.length, durationMs, state });
  }

  /**
   * One result per item, read from what `handleBatch` returned: nothing
   * finishes every item; a wrong count or a result of another kind is a
   * worker bug, logged once, and fails every item (or that item).
   */
  #results(returned: unknown, count: number): readonly (BatchResult | Error)[] | null {
    if (returned === undefined) return null;
    if (!Array.isArray(returned) || returned.length !== count) {
      const found = Array.isArray(returned)
        ? `${returned.length} results`
        : describeError(returned).slice(0, 80);
      const bug = new Error(
        `handleBatch must return nothing or one result per item (${count}), got ${found}`,
      );
      this.#options.log.error("handleBatch returned a wrong result; every item is retried", {
        items: count,
        error: bug.message,
      });
      return new Array(count).fill(bug);
    }
    return returned.map((result, i) =>
      result === undefined || result === "finish" || result instanceof Error ? result : new Error(
        `handleBatch result ${i} must be undefined, "finish" or an Error, got ${
          describeError(result).slice(0, 80)
        }`,
      )
    );
  }
}

function ignore(): void {}
