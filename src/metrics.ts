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
 * import type { DaemonSnapshot } from "./http/snapshot.ts";
 *
 * declare const snapshot: DaemonSnapshot;
 * const text = renderMetrics(snapshot); // "# HELP nsqworker_build_info …"
 * ```
 *
 * @module
 */

import { batchFamilies } from "./batch_metrics.ts";
import { DURATION_BUCKETS_MS } from "./entry_stats.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./http/snapshot.ts";
import type { EntryState } from "./running_entry.ts";
import { OUTCOME_KINDS } from "./runner/outcome.ts";

/** The content type of the 0.0.4 text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metric types used here. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Label names and values of one sample, in the order they are written. */
export type Labels = Readonly<Record<string, string>>;

/** One line of a family: `name[suffix]{labels} value`. */
export interface Sample {
  /** Appended to the family name, e.g. `_bucket` for a histogram. */
  readonly suffix?: string;
  readonly labels: Labels;
  readonly value: number;
}

/** A metric family: its `# HELP` and `# TYPE` lines, then its samples. */
export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly Sample[];
}

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
 * import type { DaemonSnapshot } from "./http/snapshot.ts";
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
  ];
}

/**
 * The `_bucket`, `_sum` and `_count` samples of a histogram. `cumulative`
 * holds one count per bound, then the `+Inf` count; a missing `+Inf` count
 * is taken from `count`.
 *
 * @example
 * ```ts
 * import { histogramSamples } from "./metrics.ts";
 *
 * histogramSamples({ topic: "t" }, [0.1, 1], [2, 5, 6], 3.2, 6).length; // 5
 * ```
 */
export function histogramSamples(
  labels: Labels,
  bounds: readonly number[],
  cumulative: readonly number[],
  sum: number,
  count: number,
): Sample[] {
  const samples: Sample[] = bounds.map((bound, i) => ({
    suffix: "_bucket",
    labels: { ...labels, le: formatValue(bound) },
    value: cumulative[i] ?? count,
  }));
  samples.push(
    {
      suffix: "_bucket",
      labels: { ...labels, le: "+Inf" },
      value: cumulative[bounds.length] ?? count,
    },
    { suffix: "_sum", labels, value: sum },
    { suffix: "_count", labels, value: count },
  );
  return samples;
}

/**
 * Writes families in the text format: each family's `# HELP` and `# TYPE`
 * lines, then its samples; the text ends with a newline.
 *
 * @example
 * ```ts
 * import { formatFamilies } from "./metrics.ts";
 *
 * formatFamilies([{ name: "up", help: "Up.", type: "gauge", samples: [{ labels: {}, value: 1 }] }]);
 * // "# HELP up Up.\n# TYPE up gauge\nup 1\n"
 * ```
 */
export function formatFamilies(families: readonly MetricFamily[]): string {
  let text = "";
  for (const family of families) {
    text += `# HELP ${family.name} ${escapeHelp(family.help)}\n`;
    text += `# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.samples) {
      text += `${family.name}${sample.suffix ?? ""}${formatLabels(sample.labels)} ${
        formatValue(sample.value)
      }\n`;
    }
  }
  return text;
}

/** `{name="value",…}`, or nothing without labels. */
function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) =>
    `${name}="${escapeLabelValue(value)}"`
  );
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

/**
 * Escapes a label value: backslash, double quote and line feed.
 *
 * @example
 * ```ts
 * import { escapeLabelValue } from "./metrics.ts";
 *
 * escapeLabelValue('a"b\\c\n'); // 'a\\"b\\\\c\\n'
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

/**
 * A sample value as the format writes it: `+Inf`, `-Inf`, `NaN`, or the
 * shortest decimal that reads back as the same number.
 *
 * @example
 * ```ts
 * import { formatValue } from "./metrics.ts";
 *
 * formatValue(0.25); // "0.25"
 * formatValue(Infinity); // "+Inf"
 * ```
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** The labels of every per-entry series. */
export function entryLabels(entry: EntrySnapshot): Labels {
  return { topic: entry.topic, channel: entry.channel };
}
