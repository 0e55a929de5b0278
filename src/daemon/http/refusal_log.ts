/**
 * Warnings about refused admin requests (a wrong or missing token), at most
 * one line per interval with the count since the last line: someone guessing
 * tokens leaves a trace without flooding the log.
 *
 * @module
 */

import type { Logger } from "../../worker/worker.ts";

/** Warns at the first refusal, then at most once per `intervalMs` with the count. */
export class RefusalLog {
  readonly #log: Logger | undefined;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastAt = -Infinity;
  #pending = 0;

  constructor(log: Logger | undefined, intervalMs = 10_000, now: () => number = Date.now) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Counts one refusal, and writes the line when the interval has passed. */
  refused(reason: string, path: string): void {
    this.#pending++;
    const now = this.#now();
    if (now - this.#lastAt < this.#intervalMs) return;
    this.#log?.warning(`HTTP request refused: ${reason}`, {
      path,
      refused: this.#pending,
      interval_ms: this.#intervalMs,
    });
    this.#lastAt = now;
    this.#pending = 0;
  }
}
