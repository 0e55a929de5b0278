/**
 * The Prometheus text exposition format (0.0.4): metric families, their
 * samples, histograms and the text they are written as. Pure; it knows
 * nothing of the daemon's figures.
 *
 * @example
 * ```ts
 * import { formatFamilies } from "./prometheus.ts";
 *
 * formatFamilies([{ name: "up", help: "Up.", type: "gauge", samples: [{ labels: {}, value: 1 }] }]);
 * ```
 *
 * @module
 */

import type { EntrySnapshot } from "./snapshot.ts";

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
/**
 * The `_bucket`, `_sum` and `_count` samples of a histogram. `cumulative`
 * holds one count per bound, then the `+Inf` count; a missing `+Inf` count
 * is taken from `count`.
 *
 * @example
 * ```ts
 * import { histogramSamples } from "./prometheus.ts";
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
 * import { formatFamilies } from "./prometheus.ts";
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
 * import { escapeLabelValue } from "./prometheus.ts";
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
 * import { formatValue } from "./prometheus.ts";
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
