/**
 * The recent past of one entry, as the page charts it: one sample per
 * interval (messages answered, failures, handler p50 and p99 in that
 * interval), kept in a fixed ring so that its memory never grows.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";
import { DURATION_BUCKETS_MS, type EntryStatsSnapshot } from "./entry_stats.ts";

/** One interval of an entry's life. */
export interface HistorySample {
  /** When the interval ended, in ms since the epoch. */
  readonly at: number;
  /** Messages answered in the interval (every outcome). */
  readonly answered: number;
  /** Of those, the failures: retried or dead. */
  readonly failed: number;
  /** Handler duration quantiles of the interval (bucket upper bounds); null when no handler ran. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** 15 minutes of 5-second samples. */
export const HISTORY_SAMPLES = 180;

/**
 * A ring of the last `capacity` samples, held in typed arrays: 5 numbers
 * of 8 bytes per sample, about 7 KB per entry at the default capacity.
 *
 * @example
 * ```ts
 * import { EntryHistory } from "./entry_history.ts";
 *
 * const history = new EntryHistory(2);
 * for (const answered of [1, 2, 3]) {
 *   history.push({ at: answered, answered, failed: 0, p50Ms: null, p99Ms: null });
 * }
 * history.samples().map((s) => s.answered); // [2, 3]
 * ```
 */
export class EntryHistory {
  readonly capacity: number;
  readonly #columns: Float64Array;
  /** Samples ever pushed; the next one goes to `#pushed % capacity`. */
  #pushed = 0;

  constructor(capacity: number = HISTORY_SAMPLES) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer: current value is ${capacity}`);
    }
    this.capacity = capacity;
    this.#columns = new Float64Array(capacity * 5);
  }

  /** Samples held, at most `capacity`. */
  get size(): number {
    return Math.min(this.#pushed, this.capacity);
  }

  /** Adds a sample, dropping the oldest once full. */
  push(sample: HistorySample): void {
    const at = (this.#pushed % this.capacity) * 5;
    const c = this.#columns;
    c[at] = sample.at;
    c[at + 1] = sample.answered;
    c[at + 2] = sample.failed;
    // NaN stands for null: no handler ran in the interval.
    c[at + 3] = sample.p50Ms ?? NaN;
    c[at + 4] = sample.p99Ms ?? NaN;
    this.#pushed++;
  }

  /** The samples, oldest first. */
  samples(): HistorySample[] {
    const out: HistorySample[] = [];
    const first = this.#pushed - this.size;
    for (let i = first; i < this.#pushed; i++) out.push(this.#read(i % this.capacity));
    return out;
  }

  /** The newest sample, or null before the first. */
  latest(): HistorySample | null {
    return this.#pushed === 0 ? null : this.#read((this.#pushed - 1) % this.capacity);
  }

  #read(slot: number): HistorySample {
    const c = this.#columns;
    const at = slot * 5;
    const p50 = c[at + 3]!;
    const p99 = c[at + 4]!;
    return {
      at: c[at]!,
      answered: c[at + 1]!,
      failed: c[at + 2]!,
      p50Ms: Number.isNaN(p50) ? null : p50,
      p99Ms: Number.isNaN(p99) ? null : p99,
    };
  }
}

const durations = new Histogram(DURATION_BUCKETS_MS);

/**
 * The sample of the interval between two snapshots of one entry's stats.
 * A counter lower than before means the entry was started afresh (a reload
 * restarted it), and the interval counts from zero.
 *
 * @example
 * ```ts
 * import { historySample } from "./entry_history.ts";
 * import { EntryStats } from "./entry_stats.ts";
 *
 * const stats = new EntryStats();
 * const before = stats.snapshot();
 * stats.record({ kind: "finish", durationMs: 3 });
 * historySample(before, stats.snapshot(), Date.now()).answered; // 1
 * ```
 */
export function historySample(
  before: EntryStatsSnapshot | null,
  now: EntryStatsSnapshot,
  at: number,
): HistorySample {
  const restarted = before === null || now.durationCount < before.durationCount ||
    total(now) < total(before);
  const base = restarted ? null : before;
  const failed = (s: EntryStatsSnapshot) => s.outcomes.retry + s.outcomes.dead;
  const buckets = now.durationBuckets.map((n, i) => n - (base?.durationBuckets[i] ?? 0));
  const interval = {
    buckets,
    count: now.durationCount - (base?.durationCount ?? 0),
    sum: now.durationSumMs - (base?.durationSumMs ?? 0),
  };
  return {
    at,
    answered: total(now) - (base === null ? 0 : total(base)),
    failed: failed(now) - (base === null ? 0 : failed(base)),
    p50Ms: durations.quantile(0.5, interval),
    p99Ms: durations.quantile(0.99, interval),
  };
}

function total(s: EntryStatsSnapshot): number {
  let sum = 0;
  for (const n of Object.values(s.outcomes)) sum += n;
  return sum;
}
