/**
 * Exponential backoff, for every delay that doubles with each failure: a
 * failed message's requeue, a lost nsqd connection's reconnect and the
 * redis dedupe store's reconnect.
 *
 * @module
 */

/**
 * Past this exponent the doubling only overflows: 2^52 times any sane first
 * delay is far above nsqd's largest requeue delay, and 2^1024 is Infinity
 * (and Infinity × 0 is NaN).
 */
const MAX_EXPONENT = 52;

/** A `random` for {@linkcode retryDelay} that always gives the jitter factor 1. */
export const NO_JITTER = (): number => 0.5;

/**
 * The delay before attempt `attempts + 1`, in milliseconds:
 * `firstDelayMs × 2^(attempts − 1)`, times a jitter factor in [0.75, 1.25)
 * drawn from `random`, capped at `maxDelayMs`.
 *
 * The result is always a whole, non-negative number of milliseconds, even for
 * odd inputs, because nsqd closes the connection on a `REQ` whose delay is
 * not an integer.
 *
 * @param attempts The attempt that just failed, starting at 1.
 * @param firstDelayMs The delay after the first attempt.
 * @param maxDelayMs The cap (for a `REQ`, keep it within nsqd's `--max-req-timeout`).
 * @param random A source of numbers in [0, 1); {@linkcode NO_JITTER} for none.
 *
 * @example
 * ```ts
 * import { retryDelay } from "./backoff.ts";
 *
 * retryDelay(1, 5_000, 900_000, () => 0.5); // 5000
 * retryDelay(3, 5_000, 900_000, () => 0.5); // 20000
 * retryDelay(30, 5_000, 900_000, () => 0.5); // 900000
 * ```
 */
export function retryDelay(
  attempts: number,
  firstDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  const exponent = attempts > 1 ? Math.min(Math.floor(attempts) - 1, MAX_EXPONENT) : 0;
  const r = random();
  const jitter = 0.75 + 0.5 * (r > 0 ? Math.min(r, 1) : 0);
  const delay = Math.floor(Math.min(firstDelayMs * 2 ** exponent * jitter, maxDelayMs));
  // NaN, negative and infinite inputs all end up here rather than on the wire.
  return delay >= 0 && delay <= Number.MAX_SAFE_INTEGER ? delay : 0;
}
