/**
 * The batch figures of an entry whose worker has `handleBatch`: batches
 * handed over, items per batch and batch durations, read by `/stats` and
 * `/metrics`.
 *
 * @module
 */

import { DURATION_BUCKETS_MS } from "./entry_stats.ts";
import { Histogram, type HistogramSnapshot } from "./histogram.ts";

/** Upper bounds of the items-per-batch histogram's buckets; the last bucket is +Inf. */
export const BATCH_ITEMS_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

/** A point-in-time copy of an entry's batch figures. */
export interface BatchStatsSnapshot {
  /** The configured batch size and wait. */
  readonly size: number;
  readonly waitMs: number;
  /** Batches handed to `handleBatch` that have ended. */
  readonly batches: number;
  /** Items per batch, over `BATCH_ITEMS_BUCKETS`. */
  readonly items: HistogramSnapshot;
  /** `handleBatch` durations in milliseconds, over `DURATION_BUCKETS_MS`. */
  readonly durationMs: HistogramSnapshot;
}

/** One entry's batch figures, updated once per batch. */
export class BatchStats {
  readonly size: number;
  readonly waitMs: number;
  #items = new Histogram(BATCH_ITEMS_BUCKETS);
  #duration = new Histogram(DURATION_BUCKETS_MS);

  constructor(size: number, waitMs: number) {
    this.size = size;
    this.waitMs = waitMs;
  }

  /** Counts a batch of `items` that ran for `durationMs`. */
  record(items: number, durationMs: number): void {
    this.#items.observe(items);
    this.#duration.observe(durationMs);
  }

  snapshot(): BatchStatsSnapshot {
    const items = this.#items.snapshot();
    return {
      size: this.size,
      waitMs: this.waitMs,
      batches: items.count,
      items,
      durationMs: this.#duration.snapshot(),
    };
  }
}
