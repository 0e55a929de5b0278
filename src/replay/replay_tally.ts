/**
 * The counts of one replay run, and how they are printed.
 *
 * @module
 */

import type { ReplayMode } from "./replay_args.ts";

/** What became of the dead letters seen in one run. */
export class ReplayTally {
  replayed = 0;
  /** Printed by `--show`. */
  shown = 0;
  /** Did not match `--reason`/`--worker`/`--match`, or came after `--limit`. */
  skipped = 0;
  truncated = 0;
  foreign = 0;
  failed = 0;
  /** Matching dead letters, by reason, worker and first line of error (what `--dry-run` shows). */
  readonly byReason = new Map<string, number>();
  readonly byWorker = new Map<string, number>();
  readonly byError = new Map<string, number>();
  /** Distinct publish failures, for the summary. */
  readonly failures = new Map<string, number>();

  /** Counts a dead letter that matches the filters. */
  addMatching(reason: string, worker: string, error: string): void {
    bump(this.byReason, reason);
    bump(this.byWorker, worker);
    bump(this.byError, firstLine(error));
  }

  /** Counts a failed publish. */
  addFailure(error: string): void {
    this.failed++;
    bump(this.failures, error);
  }
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

const MAX_ERROR_CHARS = 120;
const MAX_ERROR_LINES = 20;

function firstLine(error: string): string {
  const line = error.split("\n", 1)[0]!.trim();
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 1)}…` : line;
}

/** `left` is what nsqd's stats say the channel still holds; null when they did not answer. */
export function formatSummary(tally: ReplayTally, mode: ReplayMode, left: number | null): string {
  const lines: string[] = [];
  const dryRun = mode !== "replay";
  if (mode === "show") {
    lines.push(`show: nothing published, every dead letter left in the channel`);
    lines.push(`shown               ${tally.shown}`);
  } else if (dryRun) {
    lines.push(`dry run: nothing published, every dead letter left in the channel`);
    lines.push(`would replay        ${sum(tally.byReason)}`);
    lines.push(...breakdown("by reason", tally.byReason));
    lines.push(...breakdown("by worker", tally.byWorker));
    lines.push(...breakdown("by error", tally.byError, MAX_ERROR_LINES));
  } else {
    lines.push(`replayed            ${tally.replayed}`);
  }
  lines.push(`skipped by filter   ${tally.skipped}`);
  lines.push(`truncated           ${tally.truncated} (never replayed, left)`);
  lines.push(`foreign             ${tally.foreign} (not a dead letter of nsqworker, left)`);
  if (!dryRun) {
    lines.push(`failed              ${tally.failed}`);
    lines.push(...breakdown("failures", tally.failures, MAX_ERROR_LINES));
  }
  lines.push(
    `left in channel     ${left ?? "unknown (nsqd's HTTP stats are unknown or did not answer)"}`,
  );
  return lines.join("\n") + "\n";
}

function sum(counts: Map<string, number>): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  return total;
}

function breakdown(title: string, counts: Map<string, number>, max = Infinity): string[] {
  if (counts.size === 0) return [];
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const lines = [`  ${title}:`];
  for (const [key, n] of sorted.slice(0, max)) lines.push(`    ${String(n).padStart(6)}  ${key}`);
  if (sorted.length > max) lines.push(`    … and ${sorted.length - max} more`);
  return lines;
}
