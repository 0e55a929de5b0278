/**
 * Pausing and resuming one entry of a running supervisor, as `POST
 * /entries/{topic}/{channel}/pause|resume` and the daemon's handle do.
 *
 * @module
 */

import { type EntrySnapshot, findEntry, snapshotEntry } from "./http/snapshot.ts";
import type { Supervisor } from "./supervisor.ts";

/**
 * Pauses (RDY 0 on every nsqd) or resumes the entry consuming `channel` of
 * the configured `topic`; gives its figures afterwards, or null when no
 * entry has this topic and channel.
 *
 * @example
 * ```ts
 * import { setEntryPaused } from "./set_entry_paused.ts";
 * import type { Supervisor } from "./supervisor.ts";
 *
 * declare const supervisor: Supervisor;
 * setEntryPaused(supervisor, "pageviews", "counter", true)?.consumer.paused; // true
 * ```
 */
export function setEntryPaused(
  supervisor: Supervisor,
  topic: string,
  channel: string,
  paused: boolean,
): EntrySnapshot | null {
  const running = findEntry(supervisor, topic, channel);
  if (running === null) return null;
  if (paused) running.consumer.pause();
  else running.consumer.resume();
  return snapshotEntry(running);
}
