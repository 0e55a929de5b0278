/**
 * What a consumer may take beyond what it has in flight, besides
 * `max_in_flight`: the admission its entry's circuit breaker sets, and the
 * tokens of its rate limit.
 *
 * @module
 */

import type { RateBucket } from "./rate_bucket.ts";

/**
 * A consumer's limits on taking messages, applied to the RDY it plans:
 * an admission (at most N more than those in flight, 0 to take none) and a
 * rate bucket, with the timer that plans again once tokens have refilled.
 *
 * @example
 * ```ts
 * import { IntakeLimit } from "./intake_limit.ts";
 * import { TokenBucket } from "./token_bucket.ts";
 *
 * const intake = new IntakeLimit(new TokenBucket(200, 1_000), () => {});
 * intake.admit(1);
 * intake.cap(100, 3, 100); // 4: one more than the three in flight
 * intake.stop();
 * ```
 */
export class IntakeLimit {
  readonly #bucket: RateBucket | null;
  /** Messages taken beyond those in flight, at most; null: no such limit. */
  #admit: number | null = null;
  readonly #refilled: () => void;
  #refillTimer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;

  /** `refilled` is called once tokens have come back after `cap` cut RDY for want of them. */
  constructor(bucket: RateBucket | null, refilled: () => void) {
    this.#bucket = bucket;
    this.#refilled = refilled;
  }

  /** Whether either limit is kept: then every answer can change the RDY allowed. */
  get limiting(): boolean {
    return this.#bucket !== null || this.#admit !== null;
  }

  /** Takes at most `count` messages beyond those in flight; null lifts the limit. */
  admit(count: number | null): void {
    this.#admit = count;
  }

  /**
   * The RDY `total` (of the most `maxInFlight`) cut to these limits, with
   * `inFlight` messages in flight now.
   */
  cap(total: number, inFlight: number, maxInFlight: number): number {
    if (this.#admit === 0) return 0;
    if (this.#admit !== null) total = Math.min(total, inFlight + this.#admit);
    // nsqd may send (RDY − in flight) more, so a rate limit allows as many
    // as there are tokens beyond what is in flight now.
    if (this.#bucket !== null && total > 0) {
      total = Math.min(total, inFlight + this.#bucket.available());
      // Only a bucket that is not full has a refill to wait for.
      if (total < maxInFlight && this.#bucket.available() < this.#bucket.capacity) {
        this.#scheduleRefill();
      }
    }
    return total;
  }

  /** A message arrived: it takes a token (on credit if need be). */
  take(): void {
    this.#bucket?.take();
  }

  /** No refill is waited for any longer. */
  stop(): void {
    this.#stopped = true;
    if (this.#refillTimer !== null) clearTimeout(this.#refillTimer);
    this.#refillTimer = null;
  }

  #scheduleRefill(): void {
    if (this.#refillTimer !== null || this.#stopped) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = null;
      this.#refilled();
    }, Math.max(5, this.#bucket!.msUntilNext()));
  }
}
