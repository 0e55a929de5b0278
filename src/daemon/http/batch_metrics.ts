/**
 * The `/metrics` families of entries whose worker has `handleBatch`.
 *
 * @module
 */

import { BATCH_ITEMS_BUCKETS } from "../../observe/batch_stats.ts";
import { DURATION_BUCKETS_MS } from "../../observe/entry_stats.ts";
import type { EntrySnapshot } from "./snapshot.ts";
import { entryLabels, histogramSamples, type MetricFamily } from "./prometheus.ts";

const DURATION_BOUNDS_SECONDS = DURATION_BUCKETS_MS.map((ms) => ms / 1000);

/**
 * Batches, items per batch and batch duration, one series per batch
 * entry; no family at all when no entry batches.
 *
 * @example
 * ```ts
 * import { batchFamilies } from "./batch_metrics.ts";
 *
 * batchFamilies([]).length; // 0
 * ```
 */
export function batchFamilies(entries: readonly EntrySnapshot[]): MetricFamily[] {
  const batching = entries.filter((entry) => entry.batches !== null);
  if (batching.length === 0) return [];
  return [
    {
      name: "nsqworker_batches_total",
      help: "Batches handed to handleBatch that have ended, whatever their outcome.",
      type: "counter",
      samples: batching.map((entry) => ({
        labels: entryLabels(entry),
        value: entry.batches!.batches,
      })),
    },
    {
      name: "nsqworker_batch_items",
      help: "Items per batch handed to handleBatch.",
      type: "histogram",
      samples: batching.flatMap((entry) => {
        const { buckets, sum, count } = entry.batches!.items;
        return histogramSamples(entryLabels(entry), BATCH_ITEMS_BUCKETS, buckets, sum, count);
      }),
    },
    {
      name: "nsqworker_batch_duration_seconds",
      help: "How long handleBatch calls ran, whatever their outcome.",
      type: "histogram",
      samples: batching.flatMap((entry) => {
        const { buckets, sum, count } = entry.batches!.durationMs;
        return histogramSamples(
          entryLabels(entry),
          DURATION_BOUNDS_SECONDS,
          buckets,
          sum / 1000,
          count,
        );
      }),
    },
  ];
}
