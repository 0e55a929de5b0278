/**
 * The daemon's figures at one moment, as `/stats` and `/metrics` show them,
 * and the adapter that reads them from a running supervisor. Nothing here
 * holds a secret: the config's `nsq` and `http` sections are never copied.
 *
 * @module
 */

import type { BatchStatsSnapshot } from "../../observe/batch_stats.ts";
import type { EntryStatsSnapshot } from "../../observe/entry_stats.ts";
import type { ConsumerStatus } from "../../nsq/consumer.ts";
import type { EntryState, RunningEntry } from "../../entry/running_entry.ts";
import type { BreakerSnapshot } from "../../entry/breaker_guard.ts";
import type { Readiness, Supervisor } from "../supervisor.ts";
import type { ChildRestarts, ChildStatus } from "../../child/child_pool.ts";

/** One entry's figures. */
export interface EntrySnapshot {
  /** The topic as configured (without `topic_prefix`); the name `/entries/…` uses. */
  readonly topic: string;
  /** The topic subscribed to on nsqd (`topic_prefix` + `topic`). */
  readonly nsqTopic: string;
  readonly channel: string;
  readonly worker: string;
  readonly state: EntryState;
  /** Why the entry failed to start, when it did. */
  readonly failure: string | null;
  readonly maxInFlight: number;
  readonly consumer: ConsumerStatus;
  readonly stats: EntryStatsSnapshot;
  /** Batch figures of a worker with `handleBatch`; null for one with `handle`. */
  readonly batches: BatchStatsSnapshot | null;
  /** The child processes of an entry with `processes`; null for one without. */
  readonly children: readonly ChildStatus[] | null;
  /** Its children's restarts by reason; null for an entry without `processes`. */
  readonly childRestarts: ChildRestarts | null;
  /** The circuit breaker; null without `breaker`. */
  readonly breaker: BreakerSnapshot | null;
  /**
   * A shared `rate_limit`: whether it is kept in redis now (false while
   * falling back to this process's own); null when the rate is not shared.
   */
  readonly rateShared: boolean | null;
}

/** The whole daemon's figures. */
export interface DaemonSnapshot {
  readonly version: string;
  readonly uptimeMs: number;
  readonly draining: boolean;
  readonly readiness: Readiness;
  readonly entries: readonly EntrySnapshot[];
}

/** What {@linkcode snapshotSupervisor} needs besides the supervisor. */
export interface SnapshotInfo {
  readonly version: string;
  /** When the daemon started, in `now()`'s clock. */
  readonly startedAt: number;
  /** Defaults to `Date.now`. */
  readonly now?: () => number;
}

/**
 * One running entry's figures.
 *
 * @example
 * ```ts
 * import { snapshotEntry } from "./snapshot.ts";
 * import type { RunningEntry } from "../../entry/running_entry.ts";
 *
 * declare const running: RunningEntry;
 * snapshotEntry(running).stats.outcomes.finish;
 * ```
 */
export function snapshotEntry(running: RunningEntry): EntrySnapshot {
  const { entry } = running;
  return {
    topic: entry.topic,
    nsqTopic: entry.nsqTopic,
    channel: entry.channel,
    worker: entry.worker,
    state: running.state,
    failure: running.failure,
    maxInFlight: entry.maxInFlight,
    consumer: running.consumer.status(),
    stats: running.stats.snapshot(),
    batches: running.batchStats?.snapshot() ?? null,
    children: running.children?.status() ?? null,
    childRestarts: running.children === null ? null : { ...running.children.restartsByReason },
    breaker: running.breaker?.snapshot() ?? null,
    rateShared: running.rateShared,
  };
}

/**
 * Reads a supervisor's figures now.
 *
 * @example
 * ```ts
 * import { snapshotSupervisor } from "./snapshot.ts";
 * import type { Supervisor } from "../supervisor.ts";
 *
 * declare const supervisor: Supervisor;
 * const startedAt = Date.now();
 * snapshotSupervisor(supervisor, { version: "0.1.0", startedAt }).readiness.ready;
 * ```
 */
export function snapshotSupervisor(supervisor: Supervisor, info: SnapshotInfo): DaemonSnapshot {
  const now = info.now ?? Date.now;
  return {
    version: info.version,
    uptimeMs: Math.max(0, now() - info.startedAt),
    draining: supervisor.draining,
    readiness: supervisor.readiness(),
    entries: supervisor.entries.map(snapshotEntry),
  };
}

/**
 * The running entry consuming `channel` of the configured `topic`, or null.
 *
 * @example
 * ```ts
 * import { findEntry } from "./snapshot.ts";
 * import type { Supervisor } from "../supervisor.ts";
 *
 * declare const supervisor: Supervisor;
 * findEntry(supervisor, "pageviews", "counter")?.consumer.pause();
 * ```
 */
export function findEntry(
  supervisor: Supervisor,
  topic: string,
  channel: string,
): RunningEntry | null {
  return supervisor.entries.find((running) =>
    running.entry.topic === topic && running.entry.channel === channel
  ) ?? null;
}
