/**
 * Snapshots made by hand for unit tests of `/stats` and `/metrics`; the
 * figures come from a real `EntryStats` fed with outcomes.
 *
 * @module
 */

import { EntryStats } from "../../src/observe/entry_stats.ts";
import type { DaemonSnapshot, EntrySnapshot } from "../../src/daemon/http/snapshot.ts";
import type { Outcome } from "../../src/runner/outcome.ts";

/** An entry snapshot; `outcomes` are recorded into a fresh `EntryStats`. */
export function fakeEntry(
  overrides: Partial<EntrySnapshot> = {},
  outcomes: readonly Outcome[] = [],
  inFlight = 0,
): EntrySnapshot {
  const stats = new EntryStats(() => inFlight);
  for (const outcome of outcomes) stats.record(outcome);
  return {
    topic: "pageviews",
    nsqTopic: "env.pageviews",
    channel: "counter",
    worker: "demo/pageview",
    state: "running",
    failure: null,
    maxInFlight: 10,
    consumer: {
      connected: ["127.0.0.1:4150"],
      disconnected: [],
      paused: false,
      rdy: 10,
      nsqds: [{ address: "127.0.0.1:4150", connected: true, rdy: 10, inFlight: inFlight }],
    },
    stats: stats.snapshot(),
    batches: null,
    children: null,
    childRestarts: null,
    breaker: null,
    rateShared: null,
    ...overrides,
  };
}

/** A daemon snapshot with the given entries. */
export function fakeSnapshot(
  entries: readonly EntrySnapshot[] = [fakeEntry()],
  overrides: Partial<DaemonSnapshot> = {},
): DaemonSnapshot {
  return {
    version: "9.9.9",
    uptimeMs: 12_500,
    draining: false,
    readiness: { ready: true, reasons: [] },
    entries,
    ...overrides,
  };
}
