/**
 * When the daemon's thread counts as stalled: its heartbeat, seen from the
 * watchdog's thread, has not moved for longer than `stall_timeout`.
 *
 * @module
 */

/**
 * How often the daemon's thread beats the board (and the watchdog looks at
 * it): a tenth of `stall_timeout`, from 50ms to 1s, so that the process
 * ends at most a few heartbeats after `stall_timeout`.
 */
export function heartbeatPeriodMs(stallTimeoutMs: number): number {
  return Math.min(1_000, Math.max(50, Math.round(stallTimeoutMs / 10)));
}

/**
 * Watches a heartbeat counter. A thread that turns beats at least once per
 * period after each turn, so a thread whose turns are less than
 * `stall_timeout` apart never goes a period longer than that without a
 * beat: the detector waits for `stall_timeout` plus one period.
 *
 * A look that comes late (the whole process was stopped, or the machine
 * suspended) starts the wait over: the daemon's thread was not running
 * either, so it is not to blame.
 *
 * @example
 * ```ts
 * import { StallDetector } from "./stall_detector.ts";
 *
 * const detector = new StallDetector(2_000, 0);
 * let stalled: number | null = null;
 * for (let now = 0; stalled === null; now += 200) stalled = detector.stalledFor(7, now);
 * stalled; // 2_400: the heartbeat stayed at 7 from 0 on
 * ```
 */
export class StallDetector {
  #stallTimeoutMs: number;
  #periodMs: number;
  #beat = Number.NaN;
  /** When the heartbeat was last seen to move. */
  #since: number;
  #lookedAt: number;

  constructor(stallTimeoutMs: number, now: number) {
    this.#stallTimeoutMs = stallTimeoutMs;
    this.#periodMs = heartbeatPeriodMs(stallTimeoutMs);
    this.#since = now;
    this.#lookedAt = now;
  }

  /** A new `stall_timeout` (a reload); the wait goes on from the last beat. */
  set stallTimeoutMs(value: number) {
    this.#stallTimeoutMs = value;
    this.#periodMs = heartbeatPeriodMs(value);
  }

  /**
   * Told the heartbeat's value at `now` (ms, monotonic): how long the
   * thread has gone without a beat once that exceeds `stall_timeout` plus
   * one period, else null.
   */
  stalledFor(beat: number, now: number): number | null {
    const late = now - this.#lookedAt > this.#stallTimeoutMs / 2;
    this.#lookedAt = now;
    if (beat !== this.#beat || late) {
      this.#beat = beat;
      this.#since = now;
      return null;
    }
    const silent = now - this.#since;
    return silent > this.#stallTimeoutMs + this.#periodMs ? silent : null;
  }
}
