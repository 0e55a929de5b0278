/**
 * The page's replay: `nsqworker replay` run by the daemon itself on one or
 * more dead letter topics, with the page's filter, through the same code
 * (`replay()`) and so with the same guarantees: a dead letter is FIN'd only
 * once its body was published, the rest stays in the channel.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { replay, type ReplayTimings } from "../replay/replay.ts";
import type { Logger } from "../worker/worker.ts";

/** Which dead letters to replay. */
export interface ReplayFilter {
  /** Dead letter topics on nsqd (with `topic_prefix`); each is replayed in turn. */
  readonly topics: readonly string[];
  /** Only these reasons; empty: all. */
  readonly reasons: readonly string[];
  /** Only these workers; empty: all. */
  readonly workers: readonly string[];
  /** Only errors containing this text. */
  readonly match: string | null;
}

/** The counts a replay ends with, as `nsqworker replay` prints them. */
export interface ReplayCounts {
  readonly replayed: number;
  /** Not matching the filter: left in the channel. */
  readonly skipped: number;
  /** Still in the channel at the end, over every topic; null when an nsqd did not say. */
  readonly left: number | null;
  readonly failed: number;
  readonly truncated: number;
  readonly foreign: number;
  /** What kept a run from seeing every dead letter. */
  readonly errors: readonly string[];
}

/** The channel the replay reads, as the command's default. */
export const REPLAY_CHANNEL = "replay";

/**
 * Replays the dead letters of `filter.topics` that match it.
 *
 * @example
 * ```ts
 * import { replayDeadLetters } from "./replay_dead_letters.ts";
 * import type { Config } from "../config/types.ts";
 * import type { Logger } from "../worker/worker.ts";
 *
 * declare const config: Config;
 * declare const log: Logger;
 * const counts = await replayDeadLetters(config, {
 *   topics: ["pageviews.dead"],
 *   reasons: ["max_attempts"],
 *   workers: [],
 *   match: null,
 * }, log);
 * counts.replayed;
 * ```
 */
export async function replayDeadLetters(
  config: Config,
  filter: ReplayFilter,
  log: Logger,
  timings: Partial<ReplayTimings> = {},
): Promise<ReplayCounts> {
  const prefix = config.nsq.topicPrefix;
  let replayed = 0, skipped = 0, failed = 0, truncated = 0, foreign = 0;
  let left: number | null = 0;
  const errors: string[] = [];
  for (const topic of filter.topics) {
    const result = await replay(config, {
      configPath: config.file,
      // replay() adds the prefix back.
      from: topic.startsWith(prefix) ? topic.slice(prefix.length) : topic,
      to: null,
      channel: REPLAY_CHANNEL,
      reasons: filter.reasons,
      workers: filter.workers,
      match: filter.match,
      limit: null,
      rate: null,
      mode: "replay",
    }, {
      warn: (text) => log.warning("replay: " + text, { topic }),
      progress: null,
      show: () => {},
    }, timings);
    replayed += result.tally.replayed;
    skipped += result.tally.skipped;
    failed += result.tally.failed;
    truncated += result.tally.truncated;
    foreign += result.tally.foreign;
    left = left === null || result.left === null ? null : left + result.left;
    errors.push(...result.errors);
  }
  return { replayed, skipped, left, failed, truncated, foreign, errors };
}
