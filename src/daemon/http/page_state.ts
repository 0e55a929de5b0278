/**
 * The figures the page shows, as JSON: the live state (sent every second),
 * the history of every entry (read once, then grown by the state's newest
 * samples) and the dead letters that match a filter.
 *
 * @module
 */

import type { HistorySample } from "../../observe/entry_history.ts";
import type { DeadLetterRecord } from "../../observe/dead_letter_ring.ts";
import type { TopicDepth } from "../dead_letter_depth.ts";
import { entryKey } from "../history_sampler.ts";
import type { PageDeps } from "./page_deps.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./snapshot.ts";
import { entryJson } from "./stats_json.ts";

/** A sample as the page reads it: `[at, answered, failed, p50_ms, p99_ms]`. */
export type SampleJson = [number, number, number, number | null, number | null];

/** Dead letters listed at most, newest first. */
export const DEAD_LETTERS_SHOWN = 200;

/** Which dead letters the page lists. */
export interface DeadLetterFilter {
  /** `topic/channel` of an entry; null: every entry. */
  readonly entry: string | null;
  readonly reason: string | null;
  /** Text the error contains. */
  readonly match: string | null;
}

/** One entry of the live state: its `/stats` object with what the page adds. */
export interface EntryStateJson {
  readonly key: string;
  readonly topic: string;
  readonly channel: string;
  readonly worker: string;
  readonly state: string;
  readonly failure: string | null;
  readonly paused: boolean;
  readonly outcomes: Readonly<Record<string, number>>;
  readonly handler_duration_ms: { readonly p50: number | null; readonly p99: number | null };
  readonly nsqds: readonly {
    readonly address: string;
    readonly connected: boolean;
    readonly rdy: number;
    readonly in_flight: number;
  }[];
  readonly dead_letter_topic: string | null;
  readonly dead_letters_written: number;
  readonly last_sample: SampleJson | null;
  /** Filled by other features (`breaker`, `children`); shown when present. */
  readonly [more: string]: unknown;
}

/** The live state. */
export interface PageStateJson {
  readonly version: string;
  readonly uptime_seconds: number;
  readonly ready: boolean;
  readonly draining: boolean;
  readonly reasons: readonly string[];
  /** Whether actions are on (a token is configured). */
  readonly actions: boolean;
  readonly sample_ms: number;
  readonly samples_taken: number;
  readonly dead_letters_written: number;
  readonly entries: readonly EntryStateJson[];
}

/** The live state: `/stats` with, per entry, its nsqds, dead letters and newest sample. */
export function pageState(
  snapshot: DaemonSnapshot,
  page: PageDeps,
  actions: boolean,
): PageStateJson {
  let written = 0;
  const entries = snapshot.entries.map((entry) => {
    const dead = page.deadLetters(entry.topic, entry.channel);
    written += dead?.written ?? 0;
    const last = page.history(entry.topic, entry.channel)?.latest() ?? null;
    const json = entryJson(entry);
    return {
      ...json,
      key: entryKey(entry.topic, entry.channel),
      topic: entry.topic,
      channel: entry.channel,
      worker: entry.worker,
      state: entry.state,
      failure: entry.failure,
      paused: entry.consumer.paused,
      outcomes: entry.stats.outcomes,
      handler_duration_ms: { p50: entry.stats.durationP50Ms, p99: entry.stats.durationP99Ms },
      nsqds: entry.consumer.nsqds.map((n) => ({
        address: n.address,
        connected: n.connected,
        rdy: n.rdy,
        in_flight: n.inFlight,
      })),
      dead_letter_topic: dead?.topic ?? null,
      dead_letters_written: dead?.written ?? 0,
      last_sample: last === null ? null : sampleJson(last),
    };
  });
  return {
    version: snapshot.version,
    uptime_seconds: snapshot.uptimeMs / 1000,
    ready: snapshot.readiness.ready,
    draining: snapshot.draining,
    reasons: snapshot.readiness.reasons,
    actions,
    sample_ms: page.sampleMs,
    samples_taken: page.historyTaken(),
    dead_letters_written: written,
    entries,
  };
}

/** Every entry's history. */
export interface PageHistoryJson {
  readonly sample_ms: number;
  readonly samples_taken: number;
  /** By `topic/channel`, oldest first. */
  readonly entries: Readonly<Record<string, readonly SampleJson[]>>;
}

/** Every entry's history, by `topic/channel`. */
export function pageHistory(snapshot: DaemonSnapshot, page: PageDeps): PageHistoryJson {
  const entries: Record<string, SampleJson[]> = {};
  for (const entry of snapshot.entries) {
    entries[entryKey(entry.topic, entry.channel)] =
      page.history(entry.topic, entry.channel)?.samples().map(sampleJson) ?? [];
  }
  return { sample_ms: page.sampleMs, samples_taken: page.historyTaken(), entries };
}

function sampleJson(s: HistorySample): SampleJson {
  return [s.at, s.answered, s.failed, s.p50Ms, s.p99Ms];
}

/** One listed dead letter, with its entry. */
export interface ListedDeadLetter {
  readonly entry: EntrySnapshot;
  readonly record: DeadLetterRecord;
}

/** The dead letters matching `filter`, newest first, and how many matched in all. */
export function listDeadLetters(
  snapshot: DaemonSnapshot,
  page: PageDeps,
  filter: DeadLetterFilter,
): { readonly matching: number; readonly shown: ListedDeadLetter[]; readonly reasons: string[] } {
  const all: ListedDeadLetter[] = [];
  const reasons = new Set<string>();
  for (const entry of snapshot.entries) {
    const key = entryKey(entry.topic, entry.channel);
    if (filter.entry !== null && filter.entry !== key) continue;
    for (const record of page.deadLetters(entry.topic, entry.channel)?.records() ?? []) {
      reasons.add(record.reason);
      if (filter.reason !== null && record.reason !== filter.reason) continue;
      if (filter.match !== null && !record.error.includes(filter.match)) continue;
      all.push({ entry, record });
    }
  }
  all.sort((a, b) => b.record.at - a.record.at);
  return { matching: all.length, shown: all.slice(0, DEAD_LETTERS_SHOWN), reasons: [...reasons] };
}

/** The dead letter topics of the entries the filter names, once each. */
export function deadLetterTopics(
  snapshot: DaemonSnapshot,
  page: PageDeps,
  entry: string | null,
): string[] {
  const topics = new Set<string>();
  for (const e of snapshot.entries) {
    if (entry !== null && entry !== entryKey(e.topic, e.channel)) continue;
    const topic = page.deadLetters(e.topic, e.channel)?.topic;
    if (topic) topics.add(topic);
  }
  return [...topics];
}

/** One dead letter as the page lists it. */
export interface DeadLetterJson {
  readonly at: number;
  /** `topic/channel` of its entry. */
  readonly entry: string;
  readonly worker: string;
  readonly message_id: string;
  readonly attempts: number;
  readonly reason: string;
  readonly error: string;
  readonly body_bytes: number;
  readonly preview: DeadLetterRecord["preview"];
}

/** The dead letters listed, and the depth of their topics on nsqd. */
export interface DeadLettersJson {
  readonly matching: number;
  /** Every reason among the entries' dead letters, for the filter. */
  readonly reasons: readonly string[];
  readonly shown: readonly DeadLetterJson[];
  readonly depths: readonly TopicDepth[];
}

/** The JSON of the dead letters listed and the depth of their topics. */
export function deadLettersJson(
  list: ReturnType<typeof listDeadLetters>,
  depths: readonly TopicDepth[],
): DeadLettersJson {
  return {
    matching: list.matching,
    reasons: list.reasons,
    shown: list.shown.map(({ entry, record }) => ({
      at: record.at,
      entry: entryKey(entry.topic, entry.channel),
      worker: entry.worker,
      message_id: record.messageId,
      attempts: record.attempts,
      reason: record.reason,
      error: record.error,
      body_bytes: record.bodyBytes,
      preview: record.preview,
    })),
    depths,
  };
}

/** Reads the filter from a URL's query (`entry`, `reason`, `match`); empty means any. */
export function deadLetterFilter(query: URLSearchParams): DeadLetterFilter {
  const value = (name: string) => {
    const text = query.get(name)?.trim() ?? "";
    return text === "" ? null : text;
  };
  return { entry: value("entry"), reason: value("reason"), match: value("match") };
}
