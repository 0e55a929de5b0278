/**
 * The JSON of `GET /stats`, and of the entry that pause and resume answer
 * with.
 *
 * @module
 */

import type { BatchStatsSnapshot } from "../../observe/batch_stats.ts";
import type { BreakerSnapshot } from "../../entry/breaker_guard.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./snapshot.ts";

/**
 * The body of `GET /stats`.
 *
 * @example
 * ```ts
 * import { statsJson } from "./stats_json.ts";
 * import type { DaemonSnapshot } from "./snapshot.ts";
 *
 * declare const snapshot: DaemonSnapshot;
 * JSON.stringify(statsJson(snapshot));
 * ```
 */
export function statsJson(snapshot: DaemonSnapshot): Record<string, unknown> {
  return {
    version: snapshot.version,
    uptime_seconds: snapshot.uptimeMs / 1000,
    draining: snapshot.draining,
    ready: snapshot.readiness.ready,
    reasons: snapshot.readiness.reasons,
    entries: snapshot.entries.map(entryJson),
  };
}

/**
 * One entry of `GET /stats`, and the body of pause and resume.
 *
 * @example
 * ```ts
 * import { entryJson } from "./stats_json.ts";
 * import type { EntrySnapshot } from "./snapshot.ts";
 *
 * declare const entry: EntrySnapshot;
 * entryJson(entry).paused; // false
 * ```
 */
export function entryJson(entry: EntrySnapshot): Record<string, unknown> {
  const { consumer, stats } = entry;
  return {
    topic: entry.topic,
    nsq_topic: entry.nsqTopic,
    channel: entry.channel,
    worker: entry.worker,
    state: entry.state,
    failure: entry.failure,
    paused: consumer.paused,
    max_in_flight: entry.maxInFlight,
    in_flight: stats.inFlight,
    connections: {
      connected: consumer.connected,
      disconnected: consumer.disconnected,
      rdy: consumer.rdy,
    },
    outcomes: stats.outcomes,
    dead_letter_failures: stats.deadLetterFailures,
    dedupe_store_failures: stats.storeFailures,
    dedupe_bypassed: stats.dedupeBypassed,
    invalid_traceparents: stats.invalidTraceParents,
    handler_duration_ms: {
      count: stats.durationCount,
      sum: stats.durationSumMs,
      p50: stats.durationP50Ms,
      p99: stats.durationP99Ms,
    },
    ...(entry.batches ? { batches: batchJson(entry.batches) } : {}),
    ...(entry.children
      ? {
        children: entry.children.map((child) => ({
          pid: child.pid,
          rss_bytes: child.rssBytes,
          restarts: child.restarts,
          in_flight: child.inFlight,
        })),
        child_restarts: entry.childRestarts,
      }
      : {}),
    ...(entry.breaker ? { breaker: breakerJson(entry.breaker) } : {}),
    ...(entry.rateShared === null
      ? {}
      : { rate_limit: { shared: true, in_redis: entry.rateShared } }),
  };
}

/** The circuit breaker of an entry with `breaker`. */
function breakerJson(breaker: BreakerSnapshot): Record<string, unknown> {
  return {
    state: breaker.state,
    opened_at: breaker.openedAt === null ? null : new Date(breaker.openedAt).toISOString(),
    failure_rate: breaker.failureRate,
    runs: breaker.runs,
    transitions: breaker.transitions,
    excused_deliveries: breaker.excused,
  };
}

/** The batch figures of an entry whose worker has `handleBatch`. */
function batchJson(batches: BatchStatsSnapshot): Record<string, unknown> {
  return {
    size: batches.size,
    wait_ms: batches.waitMs,
    count: batches.batches,
    items: { sum: batches.items.sum, buckets: batches.items.buckets },
    duration_ms: {
      sum: batches.durationMs.sum,
      buckets: batches.durationMs.buckets,
    },
  };
}
