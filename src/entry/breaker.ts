/**
 * The circuit breaker of an entry as a state machine on a clock: no timers,
 * no messages, no connections (see `breaker_guard.ts` for those).
 *
 * @module
 */

import type { BreakerConfig } from "../config/types.ts";

/**
 * `closed`: messages flow, and failed runs are counted. `open`: none are
 * taken. `half_open`: one message goes through, whose run closes the breaker
 * or opens it again.
 */
export type BreakerState = "closed" | "open" | "half_open";

/** Every {@linkcode BreakerState}, e.g. for one metric series each. */
export const BREAKER_STATES = [
  "closed",
  "open",
  "half_open",
] as const satisfies readonly BreakerState[];

/** How a handler run ended, for the breaker: `failed` is a throw or a timeout. */
export type RunResult = "ok" | "failed";

/** The window is counted in this many slices; a run leaves it within a slice of `window`. */
const SLICES = 10;

/**
 * Runs and failures over a sliding window, in slices: constant memory and
 * time whatever the rate of messages.
 */
class RunWindow {
  readonly #sliceMs: number;
  readonly #slice = new Array<number>(SLICES).fill(-Infinity);
  readonly #runs = new Array<number>(SLICES).fill(0);
  readonly #failures = new Array<number>(SLICES).fill(0);

  constructor(windowMs: number) {
    this.#sliceMs = Math.max(1, windowMs / SLICES);
  }

  add(failed: boolean, now: number): void {
    const slice = Math.floor(now / this.#sliceMs);
    const i = slice % SLICES;
    if (this.#slice[i] !== slice) {
      this.#slice[i] = slice;
      this.#runs[i] = 0;
      this.#failures[i] = 0;
    }
    this.#runs[i]!++;
    if (failed) this.#failures[i]!++;
  }

  /** Runs and failed runs in the window ending at `now`. */
  count(now: number): { runs: number; failures: number } {
    const current = Math.floor(now / this.#sliceMs);
    let runs = 0;
    let failures = 0;
    for (let i = 0; i < SLICES; i++) {
      if (this.#slice[i]! <= current - SLICES) continue;
      runs += this.#runs[i]!;
      failures += this.#failures[i]!;
    }
    return { runs, failures };
  }

  clear(): void {
    this.#slice.fill(-Infinity);
  }
}

/**
 * One entry's breaker. Closed, it counts handler runs over `window`; once at
 * least `min_runs` ran and the share of them that failed reaches
 * `failure_rate`, it opens. After `open_for` ({@linkcode Breaker.poll}) it is
 * half open: {@linkcode Breaker.takeProbe} lets one message through, whose
 * run closes it (success) or opens it again (failure). Each method that
 * changes the state returns the new one, null when it stays.
 *
 * @example
 * ```ts
 * import { Breaker } from "./breaker.ts";
 *
 * let now = 0;
 * const breaker = new Breaker(
 *   { failureRate: 0.5, minRuns: 2, windowMs: 10_000, openForMs: 1_000 },
 *   () => now,
 * );
 * breaker.record("failed");
 * breaker.record("failed"); // "open"
 * now = 1_000;
 * breaker.poll(); // "half_open"
 * breaker.takeProbe(); // true: this message goes through
 * breaker.probeEnded("ok"); // "closed"
 * ```
 */
export class Breaker {
  readonly settings: BreakerConfig;
  readonly #now: () => number;
  readonly #window: RunWindow;
  #state: BreakerState = "closed";
  #openedAt: number | null = null;
  /** The share of failed runs that opened it last (1 for a failed probe). */
  #openedRate: number | null = null;
  #probing = false;

  /** `now`: milliseconds on a monotonic clock (default `performance.now()`). */
  constructor(settings: BreakerConfig, now: () => number = () => performance.now()) {
    this.settings = settings;
    this.#now = now;
    this.#window = new RunWindow(settings.windowMs);
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** When it last opened, on its clock; null when closed. */
  get openedAt(): number | null {
    return this.#openedAt;
  }

  /**
   * Closed: the share of failed runs in the window now (null without runs).
   * Open or half open: the share that opened it.
   */
  failureRate(): number | null {
    if (this.#state !== "closed") return this.#openedRate;
    const { runs, failures } = this.#window.count(this.#now());
    return runs === 0 ? null : failures / runs;
  }

  /** Whether the one message of a half-open breaker is on its way. */
  get probing(): boolean {
    return this.#probing;
  }

  /** Runs, and failed runs, in the window now. */
  window(): { runs: number; failures: number } {
    return this.#window.count(this.#now());
  }

  /**
   * A handler run ended. Counted only while closed: an open breaker's
   * stragglers (runs that began before it opened) are not a measure of now,
   * and a half-open one listens to its probe alone.
   */
  record(result: RunResult): BreakerState | null {
    if (this.#state !== "closed") return null;
    const now = this.#now();
    this.#window.add(result === "failed", now);
    const { runs, failures } = this.#window.count(now);
    if (runs < this.settings.minRuns || failures < runs * this.settings.failureRate) return null;
    return this.#open(now, failures / runs);
  }

  /** Milliseconds until an open breaker lets a message through; null when it is not open. */
  msUntilHalfOpen(): number | null {
    if (this.#state !== "open") return null;
    return Math.max(0, this.#openedAt! + this.settings.openForMs - this.#now());
  }

  /** An open breaker whose `open_for` has passed becomes half open. */
  poll(): BreakerState | null {
    if (this.msUntilHalfOpen() !== 0) return null;
    this.#state = "half_open";
    this.#probing = false;
    return this.#state;
  }

  /** Half open and no message on its way yet: this one goes through (true). */
  takeProbe(): boolean {
    if (this.#state !== "half_open" || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /**
   * The message let through ended: a run that succeeded closes the breaker,
   * one that failed opens it again; null (it did not run its handler: a
   * duplicate, an invalid body, a shutdown) lets another through instead.
   */
  probeEnded(result: RunResult | null): BreakerState | null {
    if (this.#state !== "half_open" || !this.#probing) return null;
    this.#probing = false;
    if (result === null) return null;
    if (result === "failed") return this.#open(this.#now(), 1);
    this.#state = "closed";
    this.#openedAt = null;
    this.#openedRate = null;
    this.#window.clear();
    return this.#state;
  }

  #open(now: number, failureRate: number): BreakerState {
    this.#state = "open";
    this.#openedAt = now;
    this.#openedRate = failureRate;
    this.#window.clear();
    return this.#state;
  }
}
