/**
 * What a reload changes: the entries to start, stop and restart, and the
 * settings that only a restart of the process can apply.
 *
 * @module
 */

import type { Config, Entry } from "../config/types.ts";

/** The outcome of comparing the running config with a new one. */
export interface ReloadPlan {
  /** Entries of the new config that do not run yet. */
  readonly added: readonly Entry[];
  /** Running entries that the new config no longer has. */
  readonly removed: readonly Entry[];
  /** Entries whose settings differ: stopped, then started with the new ones. */
  readonly changed: readonly Entry[];
  /** Entries that keep running untouched. */
  readonly unchanged: readonly Entry[];
  /** Sections that differ but only apply at the next start (e.g. `dedupe`, `http`). */
  readonly needsRestart: readonly string[];
  /** Whether the publishing connection must be replaced (its address or settings changed). */
  readonly publisherChanged: boolean;
}

/** Identifies an entry across configs: its nsqd topic and channel. */
export function entryKey(entry: Entry): string {
  return `${entry.nsqTopic}/${entry.channel}`;
}

/**
 * Compares two configs. A change of the `nsq:` connection settings changes
 * every entry (their connections must be made again); `dedupe` and `http`
 * are reported as needing a restart rather than half-applied.
 */
export function planReload(current: Config, next: Config): ReloadPlan {
  const connectionChanged = !sameValue(
    withoutPublish(current.nsq),
    withoutPublish(next.nsq),
  );
  const running = new Map(current.workers.map((entry) => [entryKey(entry), entry]));
  const added: Entry[] = [];
  const changed: Entry[] = [];
  const unchanged: Entry[] = [];
  for (const entry of next.workers) {
    const key = entryKey(entry);
    const old = running.get(key);
    running.delete(key);
    if (old === undefined) added.push(entry);
    else if (connectionChanged || !sameEntry(old, entry)) changed.push(entry);
    else unchanged.push(entry);
  }
  const needsRestart: string[] = [];
  if (!sameValue(current.dedupe, next.dedupe)) needsRestart.push("dedupe");
  if (!sameValue(current.http, next.http)) needsRestart.push("http");
  return {
    added,
    removed: [...running.values()],
    changed,
    unchanged,
    needsRestart,
    publisherChanged: connectionChanged ||
      !sameValue(current.nsq.publishNsqdTcpAddress, next.nsq.publishNsqdTcpAddress) ||
      current.nsq.topicPrefix !== next.nsq.topicPrefix,
  };
}

function withoutPublish(nsq: Config["nsq"]): unknown {
  const { publishNsqdTcpAddress: _, ...rest } = nsq;
  return rest;
}

/** Where an entry is written does not matter, only what it says. */
function sameEntry(a: Entry, b: Entry): boolean {
  const { workerLocation: _a, ...left } = a;
  const { workerLocation: _b, ...right } = b;
  return sameValue(left, right);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every((key) =>
    Object.hasOwn(b, key) &&
    sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  );
}
