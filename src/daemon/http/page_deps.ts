/**
 * What the page reads and does beyond `/stats`: each entry's history and
 * dead letters, the depth of dead letter topics on nsqd, a pause of the
 * channel on nsqd, and replay. The composition root supplies it.
 *
 * @module
 */

import type { ChannelPauseAnswer } from "../channel_pause.ts";
import type { TopicDepth } from "../dead_letter_depth.ts";
import type { ReplayCounts, ReplayFilter } from "../replay_dead_letters.ts";
import type { DeadLetterRecord } from "../../observe/dead_letter_ring.ts";
import type { EntryHistory } from "../../observe/entry_history.ts";

/** An entry's dead letters as the page shows them. */
export interface EntryDeadLetters {
  /** The dead letter topic on nsqd; null when dead letters are off. */
  readonly topic: string | null;
  /** Dead letters written since the entry started. */
  readonly written: number;
  /** The last ones, newest first. */
  records(): readonly DeadLetterRecord[];
}

/** The page's reads and actions. */
export interface PageDeps {
  /** Milliseconds between two samples of the history. */
  readonly sampleMs: number;
  /** Rounds of samples taken so far. */
  historyTaken(): number;
  /** The entry's history; null when none is kept. */
  history(topic: string, channel: string): EntryHistory | null;
  /** The entry's dead letters; null when no entry has this topic and channel. */
  deadLetters(topic: string, channel: string): EntryDeadLetters | null;
  /** What a dead letter topic holds on nsqd. */
  topicDepth(nsqTopic: string): Promise<TopicDepth>;
  /**
   * Pauses or unpauses the entry's channel on every nsqd that has it; null
   * when no entry has this topic and channel.
   */
  pauseChannel(
    topic: string,
    channel: string,
    paused: boolean,
  ): Promise<readonly ChannelPauseAnswer[] | null>;
  /** Replays the dead letters that match `filter` (as `nsqworker replay`). */
  replay(filter: ReplayFilter): Promise<ReplayCounts>;
  /** Aborted when the daemon stops: live streams end with it. */
  readonly closing: AbortSignal;
}
