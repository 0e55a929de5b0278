/**
 * The race of a running asynchronous handler against its deadline and the
 * entry's stop signal, with `TOUCH` and lease renewal while it runs. Every
 * race of a runner shares one {@linkcode TimerQueue}.
 *
 * @module
 */

import type { DedupeStore } from "../dedupe/store.ts";
import type { Timed, TimerQueue } from "./timer_queue.ts";

/** How a race ended, or `"running"`. */
export type RaceState = "running" | "returned" | "threw" | "timed_out" | "stopped";

/** The claim a race renews at each touch. */
export interface Lease {
  readonly store: DedupeStore;
  readonly scope: string;
  readonly key: string;
  readonly token: string;
  /** How long each renewal extends the claim. */
  readonly leaseMs: number;
}

/** Options of {@linkcode Deadline}. */
export interface DeadlineOptions {
  /** The shared timers of the runner. */
  readonly timers: TimerQueue;
  /** When the handler started, on the timers' clock. */
  readonly startedAt: number;
  /** The handler's deadline, from `startedAt`. */
  readonly timeoutMs: number;
  /** The time between touches (see {@linkcode touchPeriod}); `timeoutMs` or more for none. */
  readonly periodMs: number;
  /** The message, touched (`TOUCH` to nsqd) at each period. */
  readonly message: { touch(): void };
  /** The claim to renew at each touch; null when there is none. */
  readonly lease: Lease | null;
  /** Ends the race as `"stopped"` when it aborts (a forced shutdown). */
  readonly stop?: AbortSignal | undefined;
}

function ignore(): void {}

/**
 * Touch at half of nsqd's message timeout, so that a late timer or a slow
 * round trip still lands in time; no touches when the deadline comes first.
 */
export function touchPeriod(msgTimeoutMs: number, timeoutMs: number): number {
  const half = Math.floor(msgTimeoutMs / 2);
  return half >= 1 && half < timeoutMs ? half : timeoutMs;
}

/**
 * One handler's deadline: queued in the runner's timers for its next touch
 * or its deadline, whichever is due first. It is its own timer item, so a
 * message costs no closures.
 */
export class Deadline implements Timed {
  due = 0;
  slot = -1;
  state: RaceState = "running";
  /** What the handler threw, when `state` is `"threw"`. */
  error: unknown = undefined;
  /** Resolves when the race ends. */
  readonly settled: PromiseWithResolvers<void> = Promise.withResolvers();
  readonly #timers: TimerQueue;
  readonly #deadlineAt: number;
  readonly #periodMs: number;
  readonly #message: { touch(): void };
  readonly #lease: Lease | null;
  readonly #stop: StopGroup | undefined;

  /** Queues the first touch or the deadline and listens to `stop`. */
  constructor(options: DeadlineOptions) {
    this.#timers = options.timers;
    this.#deadlineAt = options.startedAt + options.timeoutMs;
    this.#periodMs = options.periodMs;
    this.#message = options.message;
    this.#lease = options.lease;
    this.#timers.add(this, Math.min(options.startedAt + options.periodMs, this.#deadlineAt));
    const stop = options.stop;
    if (stop === undefined) return;
    this.#stop = stopGroup(stop);
    this.#stop.add(this);
    // The handler itself may have started the shutdown before the listener was there.
    if (stop.aborted) this.settle("stopped", undefined);
  }

  /** Settles the race when `pending` does; its rejection is handled even after the race ended. */
  watch(pending: PromiseLike<unknown>): void {
    watch(this, pending);
  }

  /** Ends the race, unless it has ended already. */
  settle(state: Exclude<RaceState, "running">, error: unknown): void {
    if (this.state !== "running") return;
    this.state = state;
    this.error = error;
    this.#timers.remove(this);
    this.#stop?.delete(this);
    this.settled.resolve();
  }

  /** Due: times out at the deadline, else touches, renews the claim and queues the next one. */
  fire(now: number): void {
    if (this.state !== "running") return;
    if (this.due >= this.#deadlineAt) {
      this.settle("timed_out", undefined);
      return;
    }
    try {
      this.#message.touch();
    } catch {
      // A closed connection: nsqd redelivers the message, nothing to save here.
    }
    const lease = this.#lease;
    if (lease !== null) {
      try {
        const pending = lease.store.renew(lease.scope, lease.key, lease.token, lease.leaseMs);
        if (pending instanceof Promise) pending.catch(ignore);
      } catch {
        // A lost renewal only lets the lease lapse; the next touch tries again.
      }
    }
    // On the grid of touch periods from the start; a late timer skips what it missed.
    let next = this.due + this.#periodMs;
    if (next <= now) next = now + this.#periodMs;
    this.#timers.add(this, Math.min(next, this.#deadlineAt));
  }
}

/**
 * The running deadlines of one stop signal behind a single `abort`
 * listener: a signal scans its listener list on every add and remove, so a
 * listener per handler made each message cost as much as the handlers
 * running beside it. The listener is there only while a deadline is.
 */
class StopGroup {
  readonly #signal: AbortSignal;
  readonly #running = new Set<Deadline>();

  constructor(signal: AbortSignal) {
    this.#signal = signal;
  }

  add(deadline: Deadline): void {
    if (this.#running.size === 0) this.#signal.addEventListener("abort", this);
    this.#running.add(deadline);
  }

  delete(deadline: Deadline): void {
    if (this.#running.delete(deadline) && this.#running.size === 0) {
      this.#signal.removeEventListener("abort", this);
    }
  }

  /** The `abort` listener. */
  handleEvent(): void {
    for (const deadline of [...this.#running]) deadline.settle("stopped", undefined);
  }
}

const stopGroups = new WeakMap<AbortSignal, StopGroup>();

function stopGroup(signal: AbortSignal): StopGroup {
  let group = stopGroups.get(signal);
  if (group === undefined) {
    group = new StopGroup(signal);
    stopGroups.set(signal, group);
  }
  return group;
}

async function watch(deadline: Deadline, pending: PromiseLike<unknown>): Promise<void> {
  try {
    await pending;
    deadline.settle("returned", undefined);
  } catch (error) {
    deadline.settle("threw", error);
  }
}
