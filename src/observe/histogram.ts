/**
 * Counting values into fixed buckets, as `/stats` and `/metrics` show them.
 *
 * @module
 */

/** A histogram as shown: cumulative counts per bucket (then +Inf), sum and count. */
export interface HistogramSnapshot {
  readonly buckets: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/**
 * Counts into buckets with fixed upper bounds, and a last one for anything
 * above them (+Inf). Cheap to update: it sits on the per-message path.
 *
 * @example
 * ```ts
 * import { Histogram } from "./histogram.ts";
 *
 * const histogram = new Histogram([10, 100]);
 * histogram.observe(5);
 * histogram.observe(50);
 * histogram.observe(500);
 * histogram.snapshot(); // { buckets: [1, 2, 3], sum: 555, count: 3 }
 * histogram.quantile(0.5); // 100
 * ```
 */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** `bounds` are the buckets' upper bounds, in increasing order. */
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Counts `value` in the first bucket whose bound it does not exceed. */
  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  /** A copy of the counts, cumulative as Prometheus shows them. */
  snapshot(): HistogramSnapshot {
    let running = 0;
    return {
      buckets: this.#counts.map((n) => running += n),
      sum: this.#sum,
      count: this.#count,
    };
  }

  /**
   * An estimate of quantile `q` (0 to 1) of `snapshot`: the upper bound of
   * the bucket it falls in; null when nothing was counted. Beyond the last
   * bound all that is known is "more than" it, so that bound is given.
   */
  quantile(q: number, snapshot: HistogramSnapshot = this.snapshot()): number | null {
    if (snapshot.count === 0) return null;
    const rank = Math.ceil(q * snapshot.count);
    const i = snapshot.buckets.findIndex((n) => n >= rank);
    return this.#bounds[i] ?? this.#bounds[this.#bounds.length - 1]!;
  }
}
