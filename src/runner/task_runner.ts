/**
 * Runs one message through its worker and decides the outcome; the consumer
 * carries the outcome out on the connection. No sockets here, no logging: the
 * caller logs and counts the outcome.
 *
 * @module
 */

import type { Claim, DedupeStore } from "../dedupe/store.ts";
import { PermanentError } from "../worker/permanent_error.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { Message, WorkerContext, WorkerDefinition } from "../worker/worker.ts";
import type { TaskSettings } from "../config/setting_bounds.ts";
import { checkTaskSettings } from "./check_task_settings.ts";
import { Claims, type KeyClaim, LEASE_MARGIN_MS } from "./claims.ts";
import { readNow, turnNow } from "./clock.ts";
import { Deadline, touchPeriod } from "./deadline.ts";
import { describeError, truncate } from "../error_text.ts";
import type { DeadReason, Outcome, StoreFailure } from "./outcome.ts";
import type { KeyGate } from "./key_gate.ts";
import { TimerQueue } from "./timer_queue.ts";
import { requeueDelay, type RequeueSettings } from "./requeue_delay.ts";
import { HandlerLost } from "./handler_lost.ts";
import { localWorkerCode } from "./local_worker_code.ts";
import type { Checked, CheckResult, WorkerCode } from "./worker_code.ts";

/** A message as the runner sees it: the worker's {@linkcode Message} plus what the connection offers. */
export interface TaskMessage extends Message {
  /** nsqd's message timeout on this connection, in milliseconds. */
  readonly msgTimeoutMs: number;
  /** Sends `TOUCH` for this message, resetting nsqd's message timeout. */
  touch(): void;
  /**
   * The dedupe scope of the default key, `id`: the entry's scope and the nsqd
   * that delivered the message. nsqd mints ids from a time, its `--node-id`
   * and a per-millisecond sequence, so two nsqd sharing a node-id give the
   * same id to different messages. Made once per connection, not per message.
   */
  readonly idScope: string;
}

/** The entry settings the runner uses (a config `Entry` has them all). */
export type { TaskSettings };

/** Options of {@linkcode TaskRunner}. */
export interface TaskRunnerOptions {
  /** The entry's worker module. */
  readonly worker: WorkerDefinition;
  /**
   * Where the worker's code runs (its checks and handler); by default
   * `worker`'s own functions, in this thread.
   */
  readonly code?: WorkerCode;
  /** `"<topic>/<channel>"`: the dedupe scope of the entry's custom `dedupeKey`s. */
  readonly scope: string;
  /** The entry's settings. */
  readonly settings: TaskSettings;
  /**
   * The dedupe store, shared by every entry. Its `onError` says what a
   * message gets when its claim fails (default `"retry"`).
   */
  readonly store: DedupeStore;
  /**
   * Builds the handler's `ctx` (the entry owns logging and publishing); the
   * runner supplies the signal, and `message.touch` backs `ctx.touch`.
   */
  readonly context: (message: TaskMessage, signal: AbortSignal) => WorkerContext;
  /**
   * For a batch worker: takes each message that passed decode, validate,
   * dedupe and its claim, in place of running `handle`, and gives its
   * outcome later (see {@linkcode TaskRunner.settle}).
   */
  readonly join?: (attempt: Attempt) => Promise<Outcome>;
  /**
   * `key_concurrency`: a message whose checks passed waits here for a place
   * of its order key before its claim and handler.
   */
  readonly gate?: KeyGate;
  /** A source of numbers in [0, 1) for the jitter (default `Math.random`). */
  readonly random?: () => number;
  /**
   * The clock for durations and deadlines, in milliseconds (default
   * `performance.now()`, read at most once a turn for start times).
   */
  readonly now?: () => number;
}

const DUPLICATE: Outcome = Object.freeze({ kind: "duplicate" });
const DONE: Claim = Object.freeze({ status: "done" });
const BUSY: Claim = Object.freeze({ status: "busy" });
const STOPPED_BEFORE: Outcome = Object.freeze({ kind: "interrupted", durationMs: 0 });

/** One message on its way through the runner, from its claim to its outcome. */
export interface Attempt extends KeyClaim {
  readonly message: TaskMessage;
  readonly body: unknown;
  readonly periodMs: number;
  readonly stop: AbortSignal | undefined;
}

/**
 * Runs messages through one entry's worker: decode → validate (or schema) → dedupe key →
 * claim in the dedupe store → `handle` under a deadline, with `TOUCH` and
 * lease renewal while it runs → an {@linkcode Outcome}.
 *
 * When the claim fails (the store is down), the store's `onError` decides:
 * `retry` requeues the message without running it; `process` runs it without
 * dedupe. Either way the outcome carries a `storeFailure` for the caller to
 * log and count.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "../dedupe/memory_store.ts";
 * import type { WorkerContext } from "../worker/worker.ts";
 * import { TaskRunner } from "./task_runner.ts";
 *
 * declare function buildContext(signal: AbortSignal): WorkerContext;
 *
 * const runner = new TaskRunner({
 *   worker: { handle: (body: { clicks: number }) => console.log(body.clicks) },
 *   scope: "pageviews/counter",
 *   settings: { maxAttempts: 5, requeueDelayMs: 5_000, maxRequeueDelayMs: 900_000, timeoutMs: 60_000 },
 *   store: new MemoryStore({ capacity: 100_000, ttlMs: 86_400_000 }),
 *   context: (_message, signal) => buildContext(signal),
 * });
 * const outcome = await runner.run({
 *   id: "0a1b2c3d4e5f6789",
 *   attempts: 1,
 *   timestamp: Date.now(),
 *   body: new TextEncoder().encode('{"clicks":3}'),
 *   msgTimeoutMs: 60_000,
 *   touch() {},
 *   idScope: "pageviews/counter@127.0.0.1:4150",
 * });
 * outcome.kind; // "finish"
 * ```
 */
export class TaskRunner {
  readonly #code: WorkerCode;
  readonly #scope: string;
  readonly #maxAttempts: number;
  readonly #requeue: RequeueSettings;
  readonly #timeoutMs: number;
  readonly #claims: Claims;
  readonly #bypassOnStoreError: boolean;
  readonly #context: (message: TaskMessage, signal: AbortSignal) => WorkerContext;
  readonly #join: ((attempt: Attempt) => Promise<Outcome>) | null;
  readonly #gate: KeyGate | null;
  readonly #random: () => number;
  /** Start times and due times: may give the turn's earlier reading. */
  readonly #now: () => number;
  /** End times: a fresh reading. */
  readonly #read: () => number;
  /** The touches and deadlines of every running handler. */
  readonly #timers: TimerQueue;

  /** Creates a runner; throws a `RangeError` on settings out of bounds. */
  constructor(options: TaskRunnerOptions) {
    checkTaskSettings(options.settings);
    const { maxAttempts, requeueDelayMs, maxRequeueDelayMs, timeoutMs } = options.settings;
    this.#code = options.code ?? localWorkerCode(options.worker);
    this.#scope = options.scope;
    this.#maxAttempts = maxAttempts;
    this.#requeue = { requeueDelayMs, maxRequeueDelayMs };
    this.#timeoutMs = timeoutMs;
    this.#claims = new Claims(options.store, options.join !== undefined);
    this.#bypassOnStoreError = options.store.onError === "process";
    this.#context = options.context;
    this.#join = options.join ?? null;
    this.#gate = options.gate ?? null;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? turnNow;
    this.#read = options.now ?? readNow;
    this.#timers = new TimerQueue({ now: this.#now, read: this.#read });
  }

  /**
   * Runs `message` and gives its outcome, or a promise of it that never
   * rejects: a handler that returns without a promise, with a store that
   * answers at once (the memory store), completes in the same turn without
   * allocating one. `stop` aborting (a forced shutdown) aborts the handler's
   * `ctx.signal` and gives `interrupted`.
   */
  run(message: TaskMessage, stop?: AbortSignal): Outcome | Promise<Outcome> {
    if (stop?.aborted) return STOPPED_BEFORE;
    const checked = this.#code.check(message);
    if (checked instanceof Promise) {
      return checked.then(
        (checked) => this.#keyed(message, checked, stop),
        (error) => this.#failure(message, describeError(error), null, lostDelay(error)),
      );
    }
    return this.#keyed(message, checked, stop);
  }

  /** From the dedupe key on, for a message its worker's checks let through. */
  #keyed(
    message: TaskMessage,
    checked: CheckResult,
    stop?: AbortSignal,
  ): Outcome | Promise<Outcome> {
    if (checked.kind === "dead") return checked;
    if (this.#gate === null) return this.#claim(message, checked, stop);
    return this.#gate.run(message, checked.body, stop, () => this.#claim(message, checked, stop));
  }

  /** From the claim of its dedupe key on, for a message the worker's checks passed. */
  #claim(message: TaskMessage, checked: Checked, stop?: AbortSignal): Outcome | Promise<Outcome> {
    const { body } = checked;
    let key: string | null = message.id;
    let scope = message.idScope;
    if (checked.key !== undefined) {
      key = checked.key;
      scope = this.#scope;
    }

    const periodMs = touchPeriod(message.msgTimeoutMs, this.#timeoutMs);
    const attempt: Attempt = {
      message,
      body,
      scope,
      key,
      token: null,
      checked: false,
      periodMs,
      // With touches, the lease is renewed at each one, so it only has to reach the next.
      leaseMs: periodMs + LEASE_MARGIN_MS,
      stop,
    };
    if (key === null) {
      // The worker asked for no dedupe of this message: nothing to claim or mark done.
      if (message.attempts > this.#maxAttempts) {
        return this.#unrun(attempt, this.#beyondLimit(message));
      }
      return this.#handle(attempt);
    }
    const status = this.#claims.check(attempt);
    if (status !== null) return this.#checked(attempt, status);
    let claim: Claim | Promise<Claim>;
    try {
      claim = this.#claims.claim(attempt);
    } catch (error) {
      return this.#claimFailed(attempt, error);
    }
    if (claim instanceof Promise) {
      return claim.then(
        (claim) => this.#claimed(attempt, claim),
        (error) => this.#claimFailed(attempt, error),
      );
    }
    return this.#claimed(attempt, claim);
  }

  #claimed(attempt: Attempt, claim: Claim): Outcome | Promise<Outcome> {
    if (claim.status === "done") return this.#unrun(attempt, DUPLICATE);
    if (claim.status === "busy") {
      return this.#unrun(attempt, {
        kind: "busy",
        delayMs: requeueDelay("busy", attempt.message.attempts, this.#requeue, this.#random),
      });
    }
    attempt.token = claim.token;
    if (attempt.message.attempts > this.#maxAttempts) {
      // Checked after the claim: a copy whose key is done is still a duplicate.
      return this.#claims.release(
        attempt,
        this.#unrun(attempt, this.#beyondLimit(attempt.message)),
      );
    }
    return this.#handle(attempt);
  }

  /**
   * A process-local store said where `key` stands: a free key runs its
   * handler unclaimed, and is claimed only if the handler returns a promise.
   */
  #checked(
    attempt: Attempt,
    status: "free" | "done" | "busy",
  ): Outcome | Promise<Outcome> {
    if (status !== "free") return this.#claimed(attempt, status === "done" ? DONE : BUSY);
    if (attempt.message.attempts > this.#maxAttempts) {
      return this.#unrun(attempt, this.#beyondLimit(attempt.message));
    }
    attempt.checked = true;
    return this.#handle(attempt);
  }

  /** The claim failed: the store's `onError` decides, and the outcome carries the failure. */
  #claimFailed(attempt: Attempt, error: unknown): Outcome | Promise<Outcome> {
    const failure: StoreFailure = {
      error: describeError(error),
      bypassed: this.#bypassOnStoreError,
    };
    if (!failure.bypassed) {
      const retry = this.#retry(attempt.message, `dedupe store failed: ${failure.error}`, null);
      return this.#unrun(attempt, { ...retry, storeFailure: failure });
    }
    const withFailure = (outcome: Outcome): Outcome =>
      outcome.kind === "duplicate" || outcome.kind === "busy"
        ? outcome
        : { ...outcome, storeFailure: failure };
    const outcome = attempt.message.attempts > this.#maxAttempts
      ? this.#unrun(attempt, this.#beyondLimit(attempt.message))
      : this.#handle(attempt);
    return outcome instanceof Promise ? outcome.then(withFailure) : withFailure(outcome);
  }

  /**
   * A message delivered more than `maxAttempts` times is dead-lettered
   * without running its handler: the handler already had its attempts (and
   * the dead letter could not be published), or requeues that do not run
   * it (busy, a store failure, a shutdown) used them up. Either way running
   * it again would run it past its limit; only the dead letter is retried.
   */
  #beyondLimit(message: TaskMessage): Outcome {
    return dead(
      "max_attempts",
      `attempt ${message.attempts} is beyond max_attempts ${this.#maxAttempts}: the handler is not run again`,
      null,
    );
  }

  /**
   * Runs the handler for a claimed key (`token` owns the claim), for a key
   * whose claim failed (`token` null: nothing to renew or release, and the
   * done mark is a best effort), or without dedupe (`key` null).
   */
  #handle(attempt: Attempt): Outcome | Promise<Outcome> {
    if (attempt.stop?.aborted) {
      return this.#claims.release(attempt, this.#unrun(attempt, STOPPED_BEFORE));
    }
    if (this.#join !== null) return this.#join(attempt);
    const controller = new AbortController();
    const startedAt = this.#now();
    let result: unknown;
    try {
      result = this.#code.handle(
        attempt.body,
        this.#context(attempt.message, controller.signal),
      );
    } catch (error) {
      return this.#failed(attempt, error, this.#read() - startedAt);
    }
    if (isPromiseLike(result)) {
      if (attempt.checked) this.#claims.claimLate(attempt);
      return this.#race(attempt, result, controller, startedAt);
    }
    return this.#done(attempt, this.#read() - startedAt);
  }

  /** Waits for an asynchronous handler, touching its message, until it settles, times out or is stopped. */
  async #race(
    attempt: Attempt,
    result: PromiseLike<unknown>,
    controller: AbortController,
    startedAt: number,
  ): Promise<Outcome> {
    const { message, stop } = attempt;
    const deadline = new Deadline({
      timers: this.#timers,
      startedAt,
      timeoutMs: this.#timeoutMs,
      periodMs: attempt.periodMs,
      message,
      lease: this.#claims.lease(attempt),
      stop,
    });
    deadline.watch(result);
    await deadline.settled.promise;
    const durationMs = this.#read() - startedAt;
    const state = deadline.state as Exclude<typeof deadline.state, "running">;
    if (state === "timed_out") {
      controller.abort(new DOMException(this.#timedOut(), "TimeoutError"));
    } else if (state === "stopped") {
      controller.abort((stop as AbortSignal).reason);
    }
    return await this.settle(attempt, state, deadline.error, durationMs);
  }

  /** The error of a handler (or a batch) that outlived `timeout`. */
  #timedOut(): string {
    return `${
      this.#join === null ? "handler" : "handleBatch"
    } timed out after ${this.#timeoutMs}ms`;
  }

  /**
   * The outcome of an attempt whose handler (or, for a joined attempt, whose
   * batch) ended as `state` after `durationMs` (`error` is what failed it):
   * its key marked done or its claim released.
   */
  settle(
    attempt: Attempt,
    state: "returned" | "threw" | "timed_out" | "stopped",
    error: unknown,
    durationMs: number,
  ): Outcome | Promise<Outcome> {
    switch (state) {
      case "returned":
        return this.#done(attempt, durationMs);
      case "threw":
        return this.#failed(attempt, error, durationMs);
      case "timed_out":
        return this.#claims.release(
          attempt,
          this.#failure(attempt.message, this.#timedOut(), durationMs),
        );
      case "stopped":
        return this.#claims.release(attempt, { kind: "interrupted", durationMs });
    }
  }

  /** The handler returned: marks the key done and gives `finish`. */
  #done(attempt: Attempt, durationMs: number): Outcome | Promise<Outcome> {
    return this.#claims.done(attempt, { kind: "finish", durationMs });
  }

  #failed(attempt: Attempt, error: unknown, durationMs: number): Outcome | Promise<Outcome> {
    const outcome = error instanceof PermanentError
      ? dead("permanent", truncate(String(error.message)), durationMs)
      : this.#failure(attempt.message, describeError(error), durationMs, lostDelay(error));
    return this.#claims.release(attempt, outcome);
  }

  /** A failed attempt: retried after `delayMs` (the backoff by default), dead at `maxAttempts`. */
  #failure(
    message: TaskMessage,
    error: string,
    durationMs: number | null,
    delayMs?: number,
  ): Outcome {
    if (message.attempts >= this.#maxAttempts) return dead("max_attempts", error, durationMs);
    return this.#retry(message, error, durationMs, delayMs);
  }

  #retry(
    message: TaskMessage,
    error: string,
    durationMs: number | null,
    delayMs: number = requeueDelay("retry", message.attempts, this.#requeue, this.#random),
  ): Extract<Outcome, { kind: "retry" }> {
    return { kind: "retry", delayMs, error, durationMs };
  }

  /** `outcome` for an attempt whose handler will not run: its checked body is let go. */
  #unrun<O extends Outcome>(attempt: Attempt, outcome: O): O {
    this.#code.drop(attempt.body);
    return outcome;
  }
}

/**
 * A handler whose process was lost is requeued at once: the message itself
 * may be blameless, and nsqd's attempts still bound one that is not.
 */
function lostDelay(error: unknown): number | undefined {
  return error instanceof HandlerLost ? 0 : undefined;
}

function dead(reason: DeadReason, error: string, durationMs: number | null): Outcome {
  return { kind: "dead", reason, error, durationMs };
}
