/**
 * A rate limit kept by every process of an entry together
 * (`rate_limit: { rate: 200/s, shared: true }`): one token bucket in redis,
 * from which each process takes a few tokens at a time.
 *
 * @module
 */

import { describeError } from "../error_text.ts";
import type { RateBucket } from "../nsq/rate_bucket.ts";
import { TokenBucket } from "../nsq/token_bucket.ts";
import type { Logger } from "../worker/worker.ts";
import { evalScript, type Script, script } from "./redis_scripts.ts";
import type { SharedRedis } from "./shared_redis.ts";

/**
 * Takes up to ARGV[3] tokens from the bucket KEYS[1], which refills at
 * ARGV[1] tokens per millisecond up to ARGV[2], on redis's clock (so the
 * processes' clocks do not matter) → { tokens granted, ms until the next
 * whole token }. An idle bucket expires, full by then.
 */
const TAKE_SCRIPT: Script = script(`
local rate, capacity, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(held[1]), tonumber(held[2])
if tokens == nil or at == nil then tokens, at = capacity, now end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local granted = math.max(0, math.min(wanted, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 60000)
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) / rate) end
return {granted, wait}`);

/** While redis cannot be reached, how often it is asked again. */
const RETRY_MS = 1_000;
/** The least time between two asks of a process for tokens it was refused. */
const MIN_POLL_MS = 5;

/** Options of {@linkcode RedisRateBucket}. */
export interface RedisRateBucketOptions {
  readonly redis: SharedRedis;
  /** The entry's `<topic>/<channel>` on nsqd: its processes share the bucket of this name. */
  readonly scope: string;
  /** `count` tokens every `perMs` milliseconds. */
  readonly count: number;
  readonly perMs: number;
  /** Where falling back to the local limit, and coming back, are reported. */
  readonly log?: Logger;
  /** The clock of the local fallback and of the asks, in ms (default `performance.now()`). */
  readonly now?: () => number;
}

/**
 * A {@linkcode RateBucket} whose tokens come from one bucket in redis that
 * every process of the entry takes from: together they take at most the
 * rate (plus a tenth of a second's worth, the bucket's size). Each process
 * asks for a few tokens at a time (a quarter of the bucket), as its own run
 * low, so that a turn costs no round trip.
 *
 * While redis cannot be reached, the process keeps the rate on its own, as a
 * plain `rate_limit` does (each process then takes up to the whole rate),
 * says so once, and asks redis again every second; once it answers, the
 * rate is shared again, and that is said too.
 *
 * @example
 * ```ts
 * import { RedisRateBucket } from "./redis_rate_bucket.ts";
 * import type { SharedRedis } from "./shared_redis.ts";
 *
 * declare const redis: SharedRedis;
 * const bucket = new RedisRateBucket({ redis, scope: "orders/ship", count: 200, perMs: 1_000 });
 * bucket.available(); // 0 at first: the first tokens are on their way
 * ```
 */
export class RedisRateBucket implements RateBucket {
  readonly #redis: SharedRedis;
  readonly #key: string;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #local: TokenBucket;
  /** The script's arguments: the rate per ms and the bucket's size. */
  readonly #rate: string;
  readonly #size: string;
  /** The most tokens this process holds at once. */
  readonly #share: number;
  /** Granted and not yet taken; below zero when messages were taken on credit. */
  #tokens = 0;
  #asking = false;
  /** When to ask redis again, on `now()`'s clock. */
  #askAt = -Infinity;
  /** False while redis cannot be reached: the local bucket keeps the rate meanwhile. */
  #shared = true;

  constructor(options: RedisRateBucketOptions) {
    const { count, perMs } = options;
    this.#local = new TokenBucket(count, perMs, options.now);
    this.#redis = options.redis;
    this.#key = `nsqworker:rate:{${options.scope}}`;
    this.#log = options.log;
    this.#now = options.now ?? (() => performance.now());
    const ratePerMs = count / perMs;
    this.#rate = String(ratePerMs);
    this.#size = String(this.#local.capacity);
    this.#share = Math.max(1, Math.ceil(this.#local.capacity / 4));
  }

  /** Whether the rate is kept in redis now; false while falling back to this process's own. */
  get shared(): boolean {
    return this.#shared;
  }

  get capacity(): number {
    return this.#shared ? this.#share : this.#local.capacity;
  }

  available(): number {
    this.#ask();
    return this.#shared ? Math.max(0, Math.floor(this.#tokens)) : this.#local.available();
  }

  take(): void {
    if (this.#shared) this.#tokens--;
    else this.#local.take();
  }

  msUntilNext(): number {
    this.#ask();
    const untilAsk = this.#asking ? MIN_POLL_MS : Math.max(1, Math.ceil(this.#askAt - this.#now()));
    return this.#shared ? untilAsk : Math.min(untilAsk, this.#local.msUntilNext());
  }

  /** Asks redis for tokens when this process runs low (or, falling back, when it is time to try again). */
  #ask(): void {
    if (this.#asking) return;
    const now = this.#now();
    if (now < this.#askAt) return;
    // Half the share left: more are asked for before they run out.
    if (this.#shared && this.#tokens * 2 > this.#share) return;
    // Debts (messages taken on credit) are paid back first.
    const wanted = Math.ceil(this.#share - this.#tokens);
    this.#asking = true;
    const redis = this.#redis;
    const args = [this.#rate, this.#size, String(wanted)];
    evalScript((firstKey, command) => redis.send(firstKey, command), TAKE_SCRIPT, [this.#key], args)
      .then((reply) => {
        this.#asking = false;
        const [granted, waitMs] = Array.isArray(reply) ? reply as number[] : [];
        if (typeof granted !== "number" || typeof waitMs !== "number") {
          this.#failed(new Error(`redis answered ${JSON.stringify(reply)} for tokens`));
          return;
        }
        this.#reachable();
        this.#tokens += granted;
        this.#askAt = granted < wanted ? this.#now() + Math.max(MIN_POLL_MS, waitMs) : -Infinity;
      }, (error) => {
        this.#asking = false;
        this.#failed(error);
      });
  }

  #failed(error: unknown): void {
    this.#askAt = this.#now() + RETRY_MS;
    if (!this.#shared) return;
    this.#shared = false;
    this.#log?.warning(
      "shared rate limit: redis cannot be reached; this process keeps the rate on its own",
      { redis: this.#redis.where, error: describeError(error) },
    );
  }

  #reachable(): void {
    if (this.#shared) return;
    this.#shared = true;
    this.#log?.info("shared rate limit: redis answers again; the rate is shared again", {
      redis: this.#redis.where,
    });
  }
}
