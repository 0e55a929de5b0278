/**
 * The Prometheus text exposition (format 0.0.4) of the daemon's figures, as
 * `GET /metrics` serves it. Pure: a snapshot in, text out.
 *
 * Every per-entry series is labelled with `topic` (as configured, without
 * `topic_prefix`) and `channel`; `nsqworker_entry_info` maps them to the
 * topic on nsqd and the worker.
 *
 * @example
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import type { DaemonSnapshot } from "./snapshot.ts";
 *
 * declare const snapshot: DaemonSnapshot;
 * const text = renderMetrics(snapshot); // "# HELP nsqworker_build_info …"
 * ```
 *
 * @module
 */

import { batchFamilies } from "./batch_metrics.ts";
import { protectFamilies } from "./protect_metrics.ts";
import { DURATION_BUCKETS_MS } from "../../observe/entry_stats.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./snapshot.ts";
import { entryLabels, formatFamilies, histogramSamples, type MetricFamily } from "./prometheus.ts";
import type { EntryState } from "../../entry/running_entry.ts";
import { OUTCOME_KINDS } from "../../runner/outcome.ts";
import { RESTART_REASONS } from "../../child/child_end.ts";

const ENTRY_STATES: readonly EntryState[] = [
  "starting",
  "running",
  "failed",
  "draining",
  "stopped",
];

/** Bucket upper bounds in seconds, as the `le` label writes them. */
const BUCKET_BOUNDS_SECONDS = DURATION_BUCKETS_MS.map((ms) => ms / 1000);

/**
 * Renders a snapshot in the text exposition format.
 *
 * @example
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import type { DaemonSnapshot } from "./snapshot.ts";
 *
 * declare const snapshot: DaemonSnapshot;
 * await Deno.writeTextFile("metrics.txt", renderMetrics(snapshot));
 * ```
 */
export function renderMetrics(snapshot: DaemonSnapshot): string {
  return formatFamilies(metricFamilies(snapshot));
}

/** The families of a snapshot, in the order they are written. */
export function metricFamilies(snapshot: DaemonSnapshot): MetricFamily[] {
  const { entries } = snapshot;
  const perEntry = (
    name: string,
    type: "counter" | "gauge",
    help: string,
    value: (entry: EntrySnapshot) => number,
  ): MetricFamily => ({
    name,
    help,
    type,
    samples: entries.map((entry) => ({ labels: entryLabels(entry), value: value(entry) })),
  });
  return [
    {
      name: "nsqworker_build_info",
      help: "The running nsqworker version; always 1.",
      type: "gauge",
      samples: [{ labels: { version: snapshot.version }, value: 1 }],
    },
    {
      name: "nsqworker_uptime_seconds",
      help: "Seconds since the daemon started.",
      type: "gauge",
      samples: [{ labels: {}, value: snapshot.uptimeMs / 1000 }],
    },
    {
      name: "nsqworker_ready",
      help:
        "1 when every entry has an nsqd connection and the daemon is not draining (GET /ready).",
      type: "gauge",
      samples: [{ labels: {}, value: snapshot.readiness.ready ? 1 : 0 }],
    },
    {
      name: "nsqworker_draining",
      help: "1 once the daemon is shutting down.",
      type: "gauge",
      samples: [{ labels: {}, value: snapshot.draining ? 1 : 0 }],
    },
    {
      name: "nsqworker_entry_info",
      help: "One series per entry, naming its topic on nsqd and its worker; always 1.",
      type: "gauge",
      samples: entries.map((entry) => ({
        labels: { ...entryLabels(entry), nsq_topic: entry.nsqTopic, worker: entry.worker },
        value: 1,
      })),
    },
    {
      name: "nsqworker_entry_state",
      help: "1 for the state the entry is in, 0 for the others.",
      type: "gauge",
      samples: entries.flatMap((entry) =>
        ENTRY_STATES.map((state) => ({
          labels: { ...entryLabels(entry), state },
          value: entry.state === state ? 1 : 0,
        }))
      ),
    },
    {
      name: "nsqworker_messages_total",
      help: "Messages by outcome: finish, duplicate, busy, retry, dead, interrupted.",
      type: "counter",
      samples: entries.flatMap((entry) =>
        OUTCOME_KINDS.map((outcome) => ({
          labels: { ...entryLabels(entry), outcome },
          value: entry.stats.outcomes[outcome],
        }))
      ),
    },
    perEntry(
      "nsqworker_dead_letter_failures_total",
      "counter",
      "Dead letters that could not be published (the message was requeued instead).",
      (entry) => entry.stats.deadLetterFailures,
    ),
    perEntry(
      "nsqworker_dedupe_store_failures_total",
      "counter",
      "Messages whose dedupe store call failed (requeued, or handled without dedupe).",
      (entry) => entry.stats.storeFailures,
    ),
    perEntry(
      "nsqworker_invalid_traceparents_total",
      "counter",
      "Deliveries whose trace_field held no valid W3C traceparent (ignored; tracing on only).",
      (entry) => entry.stats.invalidTraceParents,
    ),
    perEntry(
      "nsqworker_dedupe_bypassed_total",
      "counter",
      "Messages handled without dedupe because the store failed (on_store_error: process).",
      (entry) => entry.stats.dedupeBypassed,
    ),
    perEntry(
      "nsqworker_in_flight",
      "gauge",
      "Messages being handled now.",
      (entry) => entry.stats.inFlight,
    ),
    perEntry(
      "nsqworker_max_in_flight",
      "gauge",
      "The entry's max_in_flight.",
      (entry) => entry.maxInFlight,
    ),
    perEntry(
      "nsqworker_rdy",
      "gauge",
      "RDY given to nsqd, summed over the entry's connections.",
      (entry) => entry.consumer.rdy,
    ),
    perEntry(
      "nsqworker_connections",
      "gauge",
      "nsqd connections subscribed now.",
      (entry) => entry.consumer.connected.length,
    ),
    perEntry(
      "nsqworker_paused",
      "gauge",
      "1 while the entry is paused (POST /entries/{topic}/{channel}/pause).",
      (entry) => entry.consumer.paused ? 1 : 0,
    ),
    {
      name: "nsqworker_handler_duration_seconds",
      help: "How long handlers ran, whatever their outcome.",
      type: "histogram",
      samples: entries.flatMap((entry) =>
        histogramSamples(
          entryLabels(entry),
          BUCKET_BOUNDS_SECONDS,
          entry.stats.durationBuckets,
          entry.stats.durationSumMs / 1000,
          entry.stats.durationCount,
        )
      ),
    },
    ...batchFamilies(entries),
    {
      name: "nsqworker_child_restarts_total",
      help: "Child processes replaced (processes: N), by why the one before ended: exit, crash, " +
        "timeout_kill, memory or killed.",
      type: "counter",
      samples: entries.flatMap((entry) =>
        entry.childRestarts === null ? [] : RESTART_REASONS.map((reason) => ({
          labels: { ...entryLabels(entry), reason },
          value: entry.childRestarts![reason],
        }))
      ),
    },
    ...protectFamilies(entries),
  ];
}
