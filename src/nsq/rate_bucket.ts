/**
 * What a consumer's rate limit is kept with: the tokens it may take now.
 *
 * @module
 */

/**
 * Tokens for the messages a consumer may take: one per message, refilled at
 * the rate. A consumer gives RDY only for the tokens it has, and takes one
 * for each message that arrives (on credit when it arrived after RDY was
 * lowered). {@linkcode TokenBucket} keeps a rate in this process; a shared
 * bucket keeps one for every process of an entry.
 *
 * @example
 * ```ts
 * import type { RateBucket } from "./rate_bucket.ts";
 * import { TokenBucket } from "./token_bucket.ts";
 *
 * const bucket: RateBucket = new TokenBucket(200, 1_000);
 * if (bucket.available() > 0) bucket.take();
 * ```
 */
export interface RateBucket {
  /** The most tokens it holds; below that, it has a refill to wait for. */
  readonly capacity: number;
  /** Whole tokens available now (0 when in debt). */
  available(): number;
  /** Takes one token, on credit if need be. */
  take(): void;
  /** Milliseconds until it is worth asking for tokens again. */
  msUntilNext(): number;
}
