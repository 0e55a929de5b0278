/**
 * `key_concurrency`: at most N handlers at once per key of the worker's
 * `orderKey`. A message whose key is busy waits here, in the order it came,
 * holding its RDY slot and TOUCHed so that nsqd does not time it out; the
 * wait is not a failure and does not count against its `timeout`. With
 * leases shared in redis, the limit holds across processes too.
 *
 * @module
 */

import type { KeyLease, KeyLeases } from "../dedupe/key_lease.ts";
import { describeError } from "../error_text.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { Logger, Message } from "../worker/worker.ts";
import type { Outcome } from "./outcome.ts";
import { type Timed, TimerQueue } from "./timer_queue.ts";

/** A worker's `orderKey`. */
export type OrderKey = (body: unknown, message: Message) => unknown;

/** What the gate needs of a message: it is TOUCHed while it waits. */
export interface GatedMessage extends Message {
  /** nsqd's message timeout on its connection, in milliseconds. */
  readonly msgTimeoutMs: number;
  touch(): void;
}

/** Options of {@linkcode KeyGate}. */
export interface KeyGateOptions {
  readonly orderKey: OrderKey;
  /** `key_concurrency`: handlers at once per key. */
  readonly limit: number;
  /** Leases shared with the entry's other processes (a redis store); null: this process only. */
  readonly leases?: KeyLeases | null;
  /** Where an unreachable lease store is reported. */
  readonly log?: Logger;
}

const INTERRUPTED: Outcome = Object.freeze({ kind: "interrupted", durationMs: 0 });
/** The first wait before asking the lease store again for a busy key; it doubles up to the most. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 200;

/** The handlers running and the messages waiting for one key. */
interface KeyState {
  running: number;
  /** First come, first admitted. */
  readonly waiting: Waiter[];
}

/** Something done every `periodMs` while queued in the gate's timers: a TOUCH, a renewal. */
class Every implements Timed {
  due = 0;
  slot = -1;
  readonly #timers: TimerQueue;
  readonly #periodMs: number;
  readonly #action: () => void;

  constructor(timers: TimerQueue, periodMs: number, action: () => void) {
    this.#timers = timers;
    this.#periodMs = periodMs;
    this.#action = action;
    timers.add(this, performance.now() + periodMs);
  }

  fire(now: number): void {
    try {
      this.#action();
    } catch {
      // A closed connection, a store gone: the next period tries again.
    }
    this.#timers.add(this, now + this.#periodMs);
  }

  stop(): void {
    this.#timers.remove(this);
  }
}

/** A message waiting for its key, TOUCHed meanwhile. */
interface Waiter {
  readonly touching: Every;
  readonly admit: () => void;
}

/**
 * The gate of one entry with `key_concurrency`: {@linkcode KeyGate.run}
 * takes a message whose checks passed to the rest of its way (its claim and
 * handler) once its key has a free place, and frees the place when the
 * outcome is known.
 *
 * @example
 * ```ts
 * import { KeyGate } from "./key_gate.ts";
 *
 * const gate = new KeyGate({ orderKey: (body) => (body as { account: string }).account, limit: 1 });
 * const message = { id: "0a1b2c3d4e5f6789", attempts: 1, timestamp: 0, body: new Uint8Array(), msgTimeoutMs: 60_000, touch() {} };
 * await gate.run(message, { account: "a-7" }, undefined, () => ({ kind: "finish", durationMs: 1 }));
 * ```
 */
export class KeyGate {
  readonly #orderKey: OrderKey;
  readonly #limit: number;
  readonly #leases: KeyLeases | null;
  readonly #log: Logger | undefined;
  readonly #keys = new Map<string, KeyState>();
  readonly #timers = new TimerQueue({ now: () => performance.now() });
  /** Why the lease store failed, while it does; reported once per outage. */
  #unreachable: string | null = null;

  constructor(options: KeyGateOptions) {
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
      throw new RangeError(
        `Cannot gate keys as 'limit' must be a positive integer: current value is ${options.limit}`,
      );
    }
    this.#orderKey = options.orderKey;
    this.#limit = options.limit;
    this.#leases = options.leases ?? null;
    this.#log = options.log;
  }

  /** Keys with a handler running or a message waiting. */
  get busyKeys(): number {
    return this.#keys.size;
  }

  /**
   * Runs `next` (the message's way on from its checks) once its key has a
   * place, and frees the place when `next`'s outcome is known. A message
   * without a key runs at once; one whose `orderKey` throws is dead
   * (`order_key`); one still waiting when `stop` aborts is `interrupted`.
   */
  run(
    message: GatedMessage,
    body: unknown,
    stop: AbortSignal | undefined,
    next: () => Outcome | Promise<Outcome>,
  ): Outcome | Promise<Outcome> {
    let key: string;
    try {
      const found = this.#orderKey(body, message);
      if (found === null || found === undefined) return next();
      if (typeof found !== "string" && typeof found !== "number" && typeof found !== "bigint") {
        if (isPromiseLike(found)) Promise.resolve(found).catch(() => {});
        return orderKeyDead(
          `orderKey must return a string, a number, null or undefined, got ${
            isPromiseLike(found) ? "a Promise" : typeof found
          }`,
        );
      }
      key = String(found);
    } catch (error) {
      return orderKeyDead(`orderKey threw: ${describeError(error)}`);
    }
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { running: 0, waiting: [] };
      this.#keys.set(key, state);
    }
    if (state.running < this.#limit && state.waiting.length === 0) {
      state.running++;
      return this.#enter(key, state, message, stop, next);
    }
    return this.#wait(state, message, stop).then((admitted) =>
      admitted ? this.#enter(key, state, message, stop, next) : INTERRUPTED
    );
  }

  /** Waits for a place of `state`'s key, in line; false when `stop` aborted first. */
  #wait(state: KeyState, message: GatedMessage, stop: AbortSignal | undefined): Promise<boolean> {
    if (stop?.aborted) return Promise.resolve(false);
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const onStop = () => {
      const at = state.waiting.indexOf(waiter);
      if (at >= 0) state.waiting.splice(at, 1);
      waiter.touching.stop();
      resolve(false);
    };
    const waiter: Waiter = {
      touching: this.#touching(message),
      admit: () => {
        stop?.removeEventListener("abort", onStop);
        waiter.touching.stop();
        resolve(true);
      },
    };
    state.waiting.push(waiter);
    stop?.addEventListener("abort", onStop, { once: true });
    return promise;
  }

  /** Holding a place of `key`: takes a shared lease if there are any, runs `next`, then leaves. */
  #enter(
    key: string,
    state: KeyState,
    message: GatedMessage,
    stop: AbortSignal | undefined,
    next: () => Outcome | Promise<Outcome>,
  ): Outcome | Promise<Outcome> {
    if (this.#leases !== null) return this.#leased(this.#leases, key, state, message, stop, next);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = next();
    } catch (error) {
      this.#leave(key, state);
      throw error;
    }
    if (!(outcome instanceof Promise)) {
      this.#leave(key, state);
      return outcome;
    }
    return outcome.finally(() => this.#leave(key, state));
  }

  async #leased(
    leases: KeyLeases,
    key: string,
    state: KeyState,
    message: GatedMessage,
    stop: AbortSignal | undefined,
    next: () => Outcome | Promise<Outcome>,
  ): Promise<Outcome> {
    try {
      const lease = await this.#acquire(leases, key, message, stop);
      if (lease === null) return INTERRUPTED;
      const renewing = new Every(this.#timers, Math.floor(leases.leaseMs / 3), () => {
        leases.renew(lease).then((held) => {
          if (!held) {
            this.#log?.warning("order lease lost: another process may run this key meanwhile", {
              order_key: key,
            });
          }
        }, () => {});
      });
      try {
        return await next();
      } finally {
        renewing.stop();
        leases.release(lease).catch(() => {
          // It lapses with its lease.
        });
      }
    } finally {
      this.#leave(key, state);
    }
  }

  /**
   * A lease on `key`, asked for again while every place is held elsewhere or
   * the store fails (the message is TOUCHed meanwhile); null once `stop` aborts.
   */
  async #acquire(
    leases: KeyLeases,
    key: string,
    message: GatedMessage,
    stop: AbortSignal | undefined,
  ): Promise<KeyLease | null> {
    let touching: Every | null = null;
    try {
      for (let pollMs = FIRST_POLL_MS;; pollMs = Math.min(pollMs * 2, MAX_POLL_MS)) {
        if (stop?.aborted) return null;
        try {
          const lease = await leases.acquire(key, this.#limit);
          this.#reachable();
          if (lease !== null) return lease;
        } catch (error) {
          this.#failed(error);
        }
        touching ??= this.#touching(message);
        // Jittered, so that the processes waiting for one key do not ask in step.
        await pause(pollMs * (0.5 + Math.random() / 2), stop);
      }
    } finally {
      touching?.stop();
    }
  }

  /** TOUCHes `message` at half of nsqd's timeout, so that a late timer still lands in time. */
  #touching(message: GatedMessage): Every {
    return new Every(this.#timers, Math.max(1, Math.floor(message.msgTimeoutMs / 2)), () => {
      message.touch();
    });
  }

  /** A place of `key` is free: the next in line takes it, or the key is forgotten. */
  #leave(key: string, state: KeyState): void {
    const waiter = state.waiting.shift();
    if (waiter !== undefined) {
      waiter.admit();
      return;
    }
    if (--state.running === 0) this.#keys.delete(key);
  }

  #failed(error: unknown): void {
    const first = this.#unreachable === null;
    this.#unreachable = describeError(error);
    if (!first) return;
    this.#log?.warning(
      "order leases unreachable: messages with an order key wait until the store answers",
      { error: this.#unreachable },
    );
  }

  #reachable(): void {
    if (this.#unreachable === null) return;
    this.#unreachable = null;
    this.#log?.info("order leases reachable again");
  }
}

function orderKeyDead(error: string): Outcome {
  return { kind: "dead", reason: "order_key", error, durationMs: null };
}

function pause(ms: number, stop: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stop?.addEventListener("abort", done, { once: true });
  });
}
