/**
 * Takes a sample of every entry's stats on a timer into its
 * {@linkcode EntryHistory}, for the page's charts. The history is kept by
 * topic and channel, so it goes on when a reload restarts an entry, and is
 * dropped when an entry leaves the config.
 *
 * @module
 */

import { EntryHistory, HISTORY_SAMPLES, historySample } from "../observe/entry_history.ts";
import type { EntryStats, EntryStatsSnapshot } from "../observe/entry_stats.ts";

/** One sample every 5 s: 180 of them are the last 15 minutes. */
export const HISTORY_SAMPLE_MS = 5000;

/** What is sampled of an entry. */
export interface SampledEntry {
  readonly entry: { readonly topic: string; readonly channel: string };
  readonly stats: EntryStats;
}

/** Options of {@linkcode HistorySampler}. */
export interface HistorySamplerOptions {
  /** Default {@linkcode HISTORY_SAMPLE_MS}. */
  readonly intervalMs?: number;
  /** Samples kept per entry (default {@linkcode HISTORY_SAMPLES}). */
  readonly capacity?: number;
  /** The clock of the samples' times (default `Date.now`). */
  readonly now?: () => number;
}

interface Tracked {
  readonly history: EntryHistory;
  last: EntryStatsSnapshot;
}

/** The key of an entry: NSQ names have no `/`. */
export function entryKey(topic: string, channel: string): string {
  return `${topic}/${channel}`;
}

/**
 * The histories of a supervisor's entries.
 *
 * @example
 * ```ts
 * import { HistorySampler } from "./history_sampler.ts";
 * import type { Supervisor } from "./supervisor.ts";
 *
 * declare const supervisor: Supervisor;
 * const sampler = new HistorySampler(() => supervisor.entries);
 * sampler.start();
 * sampler.history("pageviews", "counter");
 * sampler.stop();
 * ```
 */
export class HistorySampler {
  readonly intervalMs: number;
  readonly #entries: () => readonly SampledEntry[];
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #tracked = new Map<string, Tracked>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #taken = 0;

  constructor(entries: () => readonly SampledEntry[], options: HistorySamplerOptions = {}) {
    this.#entries = entries;
    this.intervalMs = options.intervalMs ?? HISTORY_SAMPLE_MS;
    this.#capacity = options.capacity ?? HISTORY_SAMPLES;
    this.#now = options.now ?? Date.now;
  }

  /** Rounds of samples taken so far: a reader that saw one less needs only the newest. */
  get taken(): number {
    return this.#taken;
  }

  /** Samples every `intervalMs` until {@linkcode stop}; the first sample only sets the start. */
  start(): void {
    if (this.#timer !== null) return;
    this.#begin();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling. Safe to call twice. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes one sample of every entry now. */
  sample(): void {
    const at = this.#now();
    const seen = new Set<string>();
    for (const running of this.#entries()) {
      const key = entryKey(running.entry.topic, running.entry.channel);
      seen.add(key);
      const now = running.stats.snapshot();
      const tracked = this.#tracked.get(key);
      if (tracked === undefined) {
        // An entry new to the config: its first interval starts here.
        this.#tracked.set(key, { history: new EntryHistory(this.#capacity), last: now });
        continue;
      }
      tracked.history.push(historySample(tracked.last, now, at));
      tracked.last = now;
    }
    for (const key of this.#tracked.keys()) if (!seen.has(key)) this.#tracked.delete(key);
    this.#taken++;
  }

  /** The history of an entry, or null when none is kept for it. */
  history(topic: string, channel: string): EntryHistory | null {
    return this.#tracked.get(entryKey(topic, channel))?.history ?? null;
  }

  #begin(): void {
    for (const running of this.#entries()) {
      const key = entryKey(running.entry.topic, running.entry.channel);
      if (!this.#tracked.has(key)) {
        this.#tracked.set(key, {
          history: new EntryHistory(this.#capacity),
          last: running.stats.snapshot(),
        });
      }
    }
  }
}
