/**
 * The key gate of an entry with `key_concurrency`, with leases in redis when
 * its dedupe store is there, so that the limit holds across processes.
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import { RedisKeyLeases } from "../dedupe/redis_lease.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import { KeyGate, type OrderKey } from "../runner/key_gate.ts";
import type { Logger, WorkerDefinition } from "../worker/worker.ts";

/**
 * The gate of `entry`, or null when it has no `key_concurrency` (or its
 * worker no `orderKey`, which `check` refuses).
 *
 * @example
 * ```ts
 * import { entryKeyGate } from "./entry_key_gate.ts";
 * import { MemoryStore } from "../dedupe/memory_store.ts";
 * import { logger } from "../observe/log.ts";
 *
 * const gate = entryKeyGate(
 *   { nsqTopic: "orders", channel: "ship", keyConcurrency: 1 },
 *   { orderKey: (body: { account: string }) => body.account, handle() {} },
 *   new MemoryStore({ capacity: 100, ttlMs: 60_000 }),
 *   logger("entry"),
 * );
 * ```
 */
export function entryKeyGate(
  entry: Pick<Entry, "nsqTopic" | "channel"> & Partial<Pick<Entry, "keyConcurrency">>,
  worker: WorkerDefinition,
  store: DedupeStore,
  log: Logger,
): KeyGate | null {
  const limit = entry.keyConcurrency ?? null;
  const orderKey = worker.orderKey as OrderKey | undefined;
  if (limit === null || orderKey === undefined) return null;
  const scope = `${entry.nsqTopic}/${entry.channel}`;
  return new KeyGate({
    orderKey,
    limit,
    leases: store.redis === undefined ? null : new RedisKeyLeases(store.redis, scope),
    log,
  });
}
