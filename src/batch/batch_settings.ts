/**
 * The batch size and wait an entry runs its `handleBatch` with: the entry's
 * `batch:` over the worker's `batch`, over the defaults.
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import type { WorkerDefinition } from "../worker/worker.ts";

/** How long a batch waits for more items when neither the entry nor the worker says. */
export const DEFAULT_BATCH_WAIT_MS = 1_000;

/** The batch settings of an entry. */
export interface BatchSettings {
  /** The most items a batch holds. */
  readonly size: number;
  /** How long a batch waits for more items after its first, in milliseconds. */
  readonly waitMs: number;
}

/**
 * The batch settings of an entry whose worker has `handleBatch`, or null for
 * a worker with `handle`. Without a size anywhere, a batch holds up to
 * `max_in_flight` items: as many as the entry takes at once.
 *
 * @example
 * ```ts
 * import { batchSettings } from "./batch_settings.ts";
 * import type { Entry } from "../config/types.ts";
 *
 * declare const entry: Entry;
 * batchSettings(entry, { batch: { size: 100 }, handleBatch() {} })?.size; // 100 unless the entry sets it
 * ```
 */
export function batchSettings(
  entry: Pick<Entry, "batch" | "maxInFlight">,
  worker: WorkerDefinition,
): BatchSettings | null {
  if (worker.handleBatch === undefined) return null;
  return {
    size: entry.batch?.size ?? worker.batch?.size ?? entry.maxInFlight,
    waitMs: entry.batch?.wait ?? worker.batch?.wait ?? DEFAULT_BATCH_WAIT_MS,
  };
}
