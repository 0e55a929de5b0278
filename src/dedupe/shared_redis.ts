/**
 * The redis of a redis dedupe store, lent to what else the daemon keeps in
 * redis for its processes to share: the order leases of `key_concurrency`
 * and the token buckets of shared rate limits.
 *
 * @module
 */

/**
 * One redis (server or cluster) reached through the dedupe store's
 * connection: commands fail fast while it is down, and after the store's
 * command timeout when it does not answer.
 *
 * @example
 * ```ts
 * import type { SharedRedis } from "./shared_redis.ts";
 *
 * declare const redis: SharedRedis;
 * await redis.send("nsqworker:order:k", ["PTTL", "nsqworker:order:k"]);
 * ```
 */
export interface SharedRedis {
  /** Where it points, `host:port/db` or `cluster host:port,…`, without credentials. */
  readonly where: string;
  /** Sends one command; a cluster routes it by `firstKey`. Errors never name the password. */
  send(firstKey: string, args: string[]): Promise<unknown>;
}
