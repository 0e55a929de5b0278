/**
 * Runs one message through its worker and decides the outcome; the consumer
 * carries the outcome out on the connection. No sockets here, no logging: the
 * caller logs and counts the outcome.
 *
 * @module
 */

import type { Claim, DedupeStore } from "../dedupe/store.ts";
import { PermanentError } from "../permanent_error.ts";
import type { Message, WorkerContext, WorkerDefinition } from "../worker.ts";
import { retryDelay } from "./backoff.ts";
import { decodeBody, DecodeError } from "./decode.ts";
import {
  type DeadReason,
  describeError,
  type Outcome,
  type StoreFailure,
  truncate,
} from "./outcome.ts";

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
export interface TaskSettings {
  /** The attempt at which a failure is dead-lettered rather than retried. */
  readonly maxAttempts: number;
  /** The retry delay after the first attempt; it doubles with each attempt. */
  readonly requeueDelayMs: number;
  /** The cap of the retry delay. */
  readonly maxRequeueDelayMs: number;
  /** The handler's deadline. */
  readonly timeoutMs: number;
}

/** Options of {@linkcode TaskRunner}. */
export interface TaskRunnerOptions {
  /** The entry's worker module. */
  readonly worker: WorkerDefinition;
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
  /** A source of numbers in [0, 1) for the jitter (default `Math.random`). */
  readonly random?: () => number;
  /** The clock for durations, in milliseconds (default `performance.now()`). */
  readonly now?: () => number;
}

/**
 * How much longer than the time between renewals a claim lasts: room for a
 * late timer and a slow store round trip. It stays short because it is also
 * how long a claim left by a crashed process keeps other hosts busy.
 */
export const LEASE_MARGIN_MS = 10_000;

/**
 * A busy message comes back after `requeueDelayMs` clamped to this range
 * (jittered, capped by `maxRequeueDelayMs`). Not sooner: every `REQ` costs a
 * round trip and counts as an nsqd attempt. Not later: the claim's holder
 * usually finishes soon (most often the message's own twin, published
 * twice), and then this copy is finished as a duplicate.
 */
export const BUSY_DELAY_RANGE_MS = { min: 1_000, max: 5_000 } as const;

/** setTimeout fires at once for anything longer. */
const MAX_TIMER_MS = 2_147_483_647;

const RUNNING = 0;
const RETURNED = 1;
const THREW = 2;
const TIMED_OUT = 3;
const STOPPED = 4;
type RaceState =
  | typeof RUNNING
  | typeof RETURNED
  | typeof THREW
  | typeof TIMED_OUT
  | typeof STOPPED;

const DUPLICATE: Outcome = Object.freeze({ kind: "duplicate" });

function monotonicNow(): number {
  return performance.now();
}

function ignore(): void {}

/**
 * Runs messages through one entry's worker: decode → validate → dedupe key →
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
 * import type { WorkerContext } from "../worker.ts";
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
  readonly #worker: WorkerDefinition;
  readonly #scope: string;
  readonly #maxAttempts: number;
  readonly #requeueDelayMs: number;
  readonly #maxRequeueDelayMs: number;
  readonly #timeoutMs: number;
  readonly #busyBaseMs: number;
  readonly #store: DedupeStore;
  readonly #bypassOnStoreError: boolean;
  readonly #context: (message: TaskMessage, signal: AbortSignal) => WorkerContext;
  readonly #random: () => number;
  readonly #now: () => number;

  /** Creates a runner; throws a `RangeError` on settings out of bounds. */
  constructor(options: TaskRunnerOptions) {
    const { maxAttempts, requeueDelayMs, maxRequeueDelayMs, timeoutMs } = options.settings;
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
      throw invalidSetting("maxAttempts", "a positive integer", maxAttempts);
    }
    if (!(requeueDelayMs >= 0 && requeueDelayMs <= MAX_TIMER_MS)) {
      throw invalidSetting("requeueDelayMs", `a number from 0 to ${MAX_TIMER_MS}`, requeueDelayMs);
    }
    if (!(maxRequeueDelayMs >= 0 && maxRequeueDelayMs <= MAX_TIMER_MS)) {
      throw invalidSetting(
        "maxRequeueDelayMs",
        `a number from 0 to ${MAX_TIMER_MS}`,
        maxRequeueDelayMs,
      );
    }
    if (!(timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS)) {
      throw invalidSetting("timeoutMs", `a number from 1 to ${MAX_TIMER_MS}`, timeoutMs);
    }
    this.#worker = options.worker;
    this.#scope = options.scope;
    this.#maxAttempts = maxAttempts;
    this.#requeueDelayMs = requeueDelayMs;
    this.#maxRequeueDelayMs = maxRequeueDelayMs;
    this.#timeoutMs = timeoutMs;
    this.#busyBaseMs = Math.min(
      Math.max(requeueDelayMs, BUSY_DELAY_RANGE_MS.min),
      BUSY_DELAY_RANGE_MS.max,
    );
    this.#store = options.store;
    this.#bypassOnStoreError = options.store.onError === "process";
    this.#context = options.context;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? monotonicNow;
  }

  /**
   * Runs `message` and resolves to its outcome; it never rejects. `stop`
   * aborting (a forced shutdown) aborts the handler's `ctx.signal` and gives
   * `interrupted`.
   */
  async run(message: TaskMessage, stop?: AbortSignal): Promise<Outcome> {
    if (stop?.aborted) return { kind: "interrupted", durationMs: 0 };
    const worker = this.#worker;

    let body: unknown;
    try {
      body = decodeBody(worker.decode, message.body);
    } catch (error) {
      return dead(
        "decode",
        error instanceof DecodeError ? truncate(error.message) : describeError(error),
        null,
      );
    }

    if (worker.validate !== undefined) {
      let valid: unknown;
      try {
        valid = worker.validate(body, message);
      } catch (error) {
        return dead("validate", `validate threw: ${describeError(error)}`, null);
      }
      if (isPromiseLike(valid)) {
        Promise.resolve(valid).catch(ignore);
        return dead("validate", "validate returned a Promise; it must be synchronous", null);
      }
      if (!valid) return dead("validate", `validate returned ${String(valid)}`, null);
    }

    let key: string | null = message.id;
    let scope = message.idScope;
    if (worker.dedupeKey !== undefined) {
      let custom: unknown;
      try {
        custom = worker.dedupeKey(body, message);
      } catch (error) {
        return dead("dedupe_key", `dedupeKey threw: ${describeError(error)}`, null);
      }
      if (typeof custom === "string" || typeof custom === "number" || typeof custom === "bigint") {
        key = String(custom);
        scope = this.#scope;
      } else if (custom === null) {
        key = null;
      } else if (custom !== undefined) {
        // String() of an object or a Promise is the same for every message: all but one would be duplicates.
        if (isPromiseLike(custom)) Promise.resolve(custom).catch(ignore);
        return dead(
          "dedupe_key",
          `dedupeKey must return a string, a number, null or undefined, got ${
            isPromiseLike(custom) ? "a Promise" : typeof custom
          }`,
          null,
        );
      }
    }

    const periodMs = touchPeriod(message.msgTimeoutMs, this.#timeoutMs);
    // With touches, the lease is renewed at each one, so it only has to reach the next.
    const leaseMs = periodMs + LEASE_MARGIN_MS;
    if (key === null) {
      // The worker asked for no dedupe of this message: nothing to claim or mark done.
      if (message.attempts > this.#maxAttempts) return this.#beyondLimit(message);
      return await this.#handle(message, body, scope, null, null, periodMs, leaseMs, stop);
    }
    let claim: Claim;
    try {
      const pending = this.#store.claim(scope, key, leaseMs);
      claim = pending instanceof Promise ? await pending : pending;
    } catch (error) {
      const failure: StoreFailure = {
        error: describeError(error),
        bypassed: this.#bypassOnStoreError,
      };
      if (!failure.bypassed) {
        const retry = this.#retry(message, `dedupe store failed: ${failure.error}`, null);
        return { ...retry, storeFailure: failure };
      }
      const outcome = message.attempts > this.#maxAttempts
        ? this.#beyondLimit(message)
        : await this.#handle(message, body, scope, key, null, periodMs, leaseMs, stop);
      return outcome.kind === "duplicate" || outcome.kind === "busy"
        ? outcome
        : { ...outcome, storeFailure: failure };
    }
    if (claim.status === "done") return DUPLICATE;
    if (claim.status === "busy") {
      return {
        kind: "busy",
        delayMs: retryDelay(1, this.#busyBaseMs, this.#maxRequeueDelayMs, this.#random),
      };
    }
    if (message.attempts > this.#maxAttempts) {
      // Checked after the claim: a copy whose key is done is still a duplicate.
      await this.#release(scope, key, claim.token);
      return this.#beyondLimit(message);
    }
    return await this.#handle(message, body, scope, key, claim.token, periodMs, leaseMs, stop);
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
  async #handle(
    message: TaskMessage,
    body: unknown,
    scope: string,
    key: string | null,
    token: string | null,
    periodMs: number,
    leaseMs: number,
    stop: AbortSignal | undefined,
  ): Promise<Outcome> {
    const worker = this.#worker;
    if (stop?.aborted) {
      await this.#release(scope, key, token);
      return { kind: "interrupted", durationMs: 0 };
    }

    const controller = new AbortController();
    const started = this.#now();
    let result: unknown;
    try {
      result = worker.handle(body, this.#context(message, controller.signal));
    } catch (error) {
      return await this.#failed(message, scope, key, token, error, this.#now() - started);
    }

    if (isPromiseLike(result)) {
      const race = new Race(message, this.#store, scope, key, token, periodMs, leaseMs);
      race.start(this.#timeoutMs, stop);
      watch(race, result);
      await race.settled.promise;
      const durationMs = this.#now() - started;
      switch (race.state) {
        case THREW:
          return await this.#failed(message, scope, key, token, race.error, durationMs);
        case TIMED_OUT: {
          const error = `handler timed out after ${this.#timeoutMs}ms`;
          controller.abort(new DOMException(error, "TimeoutError"));
          await this.#release(scope, key, token);
          return this.#failure(message, error, durationMs);
        }
        case STOPPED:
          controller.abort((stop as AbortSignal).reason);
          await this.#release(scope, key, token);
          return { kind: "interrupted", durationMs };
      }
      // RETURNED: finished below, like a synchronous return.
    }

    const durationMs = this.#now() - started;
    if (key === null) return { kind: "finish", durationMs };
    try {
      // A token owns nothing when the claim failed; done marks the key regardless.
      const pending = this.#store.done(scope, key, token ?? "");
      if (pending instanceof Promise) await pending;
    } catch {
      // The work happened and stays finished; a lost mark only lets a later duplicate run again.
    }
    return { kind: "finish", durationMs };
  }

  async #failed(
    message: TaskMessage,
    scope: string,
    key: string | null,
    token: string | null,
    error: unknown,
    durationMs: number,
  ): Promise<Outcome> {
    await this.#release(scope, key, token);
    if (error instanceof PermanentError) {
      return dead("permanent", truncate(String(error.message)), durationMs);
    }
    return this.#failure(message, describeError(error), durationMs);
  }

  #failure(message: TaskMessage, error: string, durationMs: number): Outcome {
    if (message.attempts >= this.#maxAttempts) return dead("max_attempts", error, durationMs);
    return this.#retry(message, error, durationMs);
  }

  #retry(
    message: TaskMessage,
    error: string,
    durationMs: number | null,
  ): Extract<Outcome, { kind: "retry" }> {
    const delayMs = retryDelay(
      message.attempts,
      this.#requeueDelayMs,
      this.#maxRequeueDelayMs,
      this.#random,
    );
    return { kind: "retry", delayMs, error, durationMs };
  }

  async #release(scope: string, key: string | null, token: string | null): Promise<void> {
    if (key === null || token === null) return;
    try {
      const pending = this.#store.release(scope, key, token);
      if (pending instanceof Promise) await pending;
    } catch {
      // The outcome stands; a claim that could not be released lapses with its lease.
    }
  }
}

/**
 * One running asynchronous handler racing its deadline and `stop`. It is its
 * own timer argument and abort listener, so a message costs no closures.
 */
class Race {
  state: RaceState = RUNNING;
  error: unknown = undefined;
  readonly settled: PromiseWithResolvers<void> = Promise.withResolvers();
  readonly message: TaskMessage;
  readonly store: DedupeStore;
  readonly scope: string;
  /** Null when the message has no dedupe. */
  readonly key: string | null;
  /** Null when the handler runs without a claim: nothing to renew. */
  readonly token: string | null;
  readonly periodMs: number;
  readonly leaseMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #stop: AbortSignal | undefined = undefined;
  /** Left to the deadline once the armed timer fires. */
  #remainingMs = 0;

  constructor(
    message: TaskMessage,
    store: DedupeStore,
    scope: string,
    key: string | null,
    token: string | null,
    periodMs: number,
    leaseMs: number,
  ) {
    this.message = message;
    this.store = store;
    this.scope = scope;
    this.key = key;
    this.token = token;
    this.periodMs = periodMs;
    this.leaseMs = leaseMs;
  }

  /**
   * Starts the one timer of this message, which fires at each touch and at the
   * deadline, and listens to `stop`.
   */
  start(timeoutMs: number, stop: AbortSignal | undefined): void {
    this.#remainingMs = timeoutMs;
    this.#schedule();
    if (stop === undefined) return;
    this.#stop = stop;
    stop.addEventListener("abort", this);
    // The handler itself may have started the shutdown before the listener was there.
    if (stop.aborted) this.settle(STOPPED, undefined);
  }

  settle(state: RaceState, error: unknown): void {
    if (this.state !== RUNNING) return;
    this.state = state;
    this.error = error;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stop?.removeEventListener("abort", this);
    this.settled.resolve();
  }

  /** The `abort` listener of `stop`. */
  handleEvent(): void {
    this.settle(STOPPED, undefined);
  }

  /** Touches the message and renews the claim if the deadline is still ahead, else times out. */
  tick(): void {
    this.#timer = undefined;
    if (this.state !== RUNNING) return;
    if (this.#remainingMs <= 0) {
      this.settle(TIMED_OUT, undefined);
      return;
    }
    try {
      this.message.touch();
    } catch {
      // A closed connection: nsqd redelivers the message, nothing to save here.
    }
    if (this.key !== null && this.token !== null) {
      try {
        const pending = this.store.renew(this.scope, this.key, this.token, this.leaseMs);
        if (pending instanceof Promise) pending.catch(ignore);
      } catch {
        // A lost renewal only lets the lease lapse; the next tick tries again.
      }
    }
    this.#schedule();
  }

  #schedule(): void {
    const delay = Math.min(this.#remainingMs, this.periodMs);
    this.#remainingMs -= delay;
    this.#timer = setTimeout(tick, delay, this);
  }
}

function tick(race: Race): void {
  race.tick();
}

/** Settles `race` when the handler's promise does; its rejection is always handled, even after a timeout. */
async function watch(race: Race, pending: PromiseLike<unknown>): Promise<void> {
  try {
    await pending;
    race.settle(RETURNED, undefined);
  } catch (error) {
    race.settle(THREW, error);
  }
}

/**
 * Touch at half of nsqd's message timeout, so that a late timer or a slow
 * round trip still lands in time; no touches when the deadline comes first.
 */
function touchPeriod(msgTimeoutMs: number, timeoutMs: number): number {
  const half = Math.floor(msgTimeoutMs / 2);
  return half >= 1 && half < timeoutMs ? half : timeoutMs;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

function dead(reason: DeadReason, error: string, durationMs: number | null): Outcome {
  return { kind: "dead", reason, error, durationMs };
}

function invalidSetting(name: string, expected: string, value: unknown): RangeError {
  return new RangeError(
    `Cannot create a task runner as 'settings.${name}' must be ${expected}: current value is ${
      String(value)
    }`,
  );
}
