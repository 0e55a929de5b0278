/**
 * The bucket of an entry whose `rate_limit` is shared by its processes.
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import { RedisRateBucket } from "../dedupe/redis_rate_bucket.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import type { Logger } from "../worker/worker.ts";

/**
 * The shared bucket of `entry`, in the redis of `store`; null when its rate
 * is not shared (or its store is not redis, which `check` refuses).
 *
 * @example
 * ```ts
 * import { sharedRate } from "./shared_rate.ts";
 * import { MemoryStore } from "../dedupe/memory_store.ts";
 * import { logger } from "../observe/log.ts";
 *
 * const entry = { nsqTopic: "orders", channel: "ship", rateLimit: { count: 200, perMs: 1_000, shared: true } };
 * sharedRate(entry, new MemoryStore({ capacity: 100, ttlMs: 60_000 }), logger("entry")); // null: not redis
 * ```
 */
export function sharedRate(
  entry: Pick<Entry, "nsqTopic" | "channel" | "rateLimit">,
  store: DedupeStore,
  log: Logger,
): RedisRateBucket | null {
  const rate = entry.rateLimit;
  if (rate === null || !rate.shared || store.redis === undefined) return null;
  return new RedisRateBucket({
    redis: store.redis,
    scope: `${entry.nsqTopic}/${entry.channel}`,
    count: rate.count,
    perMs: rate.perMs,
    log,
  });
}
