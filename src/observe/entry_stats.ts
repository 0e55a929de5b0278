/**
 * The figures of one entry: outcome counters, messages in flight (read from
 * the consumer) and handler durations, read by `/stats` and `/metrics`.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";
import { type Outcome, OUTCOME_KINDS, type StoreFailure } from "../runner/outcome.ts";

/** Upper bounds (ms) of the handler duration histogram's buckets; the last bucket is +Inf. */
export const DURATION_BUCKETS_MS = [
  1,
  2,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10_000,
  30_000,
  60_000,
] as const;

/** Outcome counters by kind. */
export type OutcomeCounts = Record<Outcome["kind"], number>;

/** A point-in-time copy of an entry's figures. */
export interface EntryStatsSnapshot {
  readonly outcomes: OutcomeCounts;
  /** Dead letters that could not be published (the message was requeued instead). */
  readonly deadLetterFailures: number;
  /** Claims the dedupe store failed to answer (`dedupe.on_store_error` decided the rest). */
  readonly storeFailures: number;
  /** Of those, the messages handled without dedupe (`on_store_error: process`). */
  readonly dedupeBypassed: number;
  /** Deliveries whose `trace_field` held no valid `traceparent` (tracing on only). */
  readonly invalidTraceParents: number;
  readonly inFlight: number;
  /** Cumulative counts per bucket of `DURATION_BUCKETS_MS`, then +Inf. */
  readonly durationBuckets: readonly number[];
  readonly durationSumMs: number;
  readonly durationCount: number;
  readonly durationP50Ms: number | null;
  readonly durationP99Ms: number | null;
}

/** Counters of one entry. Cheap to update: it sits on the per-message path. */
export class EntryStats {
  readonly outcomes: OutcomeCounts = Object.fromEntries(
    OUTCOME_KINDS.map((kind) => [kind, 0]),
  ) as OutcomeCounts;
  deadLetterFailures = 0;
  storeFailures = 0;
  dedupeBypassed = 0;
  invalidTraceParents = 0;
  readonly #inFlight: () => number;
  readonly #durations = new Histogram(DURATION_BUCKETS_MS);

  /**
   * `inFlight` reads the messages in flight from their one owner, the
   * entry's consumer (default: none).
   */
  constructor(inFlight: () => number = () => 0) {
    this.#inFlight = inFlight;
  }

  /** Messages received and not yet answered. */
  get inFlight(): number {
    return this.#inFlight();
  }

  /** Counts an outcome, a dedupe store failure it carries and, when the handler ran, its duration. */
  record(outcome: Outcome): void {
    this.outcomes[outcome.kind]++;
    const failure = (outcome as { readonly storeFailure?: StoreFailure }).storeFailure;
    if (failure !== undefined) {
      this.storeFailures++;
      if (failure.bypassed) this.dedupeBypassed++;
    }
    const duration = "durationMs" in outcome ? outcome.durationMs : null;
    if (duration !== null) this.#durations.observe(duration);
  }

  /** A copy of the figures, with p50/p99 estimated from the buckets (their upper bounds). */
  snapshot(): EntryStatsSnapshot {
    const durations = this.#durations.snapshot();
    return {
      outcomes: { ...this.outcomes },
      deadLetterFailures: this.deadLetterFailures,
      storeFailures: this.storeFailures,
      dedupeBypassed: this.dedupeBypassed,
      invalidTraceParents: this.invalidTraceParents,
      inFlight: this.inFlight,
      durationBuckets: durations.buckets,
      durationSumMs: durations.sum,
      durationCount: durations.count,
      durationP50Ms: this.#durations.quantile(0.5, durations),
      durationP99Ms: this.#durations.quantile(0.99, durations),
    };
  }
}
