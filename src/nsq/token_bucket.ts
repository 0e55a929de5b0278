/**
 * A token bucket: `count` tokens every `perMs`, holding at most a tenth of
 * a second's worth (at least one), so that a limit is kept over short
 * windows too. Tokens may go below zero: messages nsqd had already sent when
 * RDY was lowered are taken on credit and paid back from the next refill.
 *
 * @module
 */

/** Tokens that refill over time. */
export class TokenBucket {
  readonly ratePerMs: number;
  readonly capacity: number;
  #tokens: number;
  #at: number;
  #now: () => number;

  constructor(count: number, perMs: number, now: () => number = () => performance.now()) {
    if (!(count > 0) || !(perMs > 0)) {
      throw new RangeError(`a rate needs count and perMs above 0, got ${count}/${perMs}ms`);
    }
    this.ratePerMs = count / perMs;
    this.capacity = Math.max(1, Math.ceil(this.ratePerMs * 100));
    this.#now = now;
    this.#at = now();
    this.#tokens = this.capacity;
  }

  /** Whole tokens available now (0 when in debt). */
  available(): number {
    this.#refill();
    return Math.max(0, Math.floor(this.#tokens));
  }

  /** Takes one token, on credit if need be. */
  take(): void {
    this.#refill();
    this.#tokens--;
  }

  /** Milliseconds until one more whole token than now. */
  msUntilNext(): number {
    this.#refill();
    const next = Math.max(1, Math.floor(this.#tokens) + 1);
    return Math.ceil((next - this.#tokens) / this.ratePerMs);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.capacity, this.#tokens + (now - this.#at) * this.ratePerMs);
    this.#at = now;
  }
}
