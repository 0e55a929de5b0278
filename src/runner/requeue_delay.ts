/**
 * How long a message the daemon gives back to nsqd waits before nsqd
 * delivers it again: the delay of every `REQ` for a message the runner saw
 * is decided here, by why it is requeued.
 *
 * @module
 */

import { retryDelay } from "../backoff.ts";
import type { TaskSettings } from "../config/setting_bounds.ts";

/**
 * Why a message goes back to nsqd:
 *
 * - `retry`: its handler failed or timed out, or the dedupe store failed on
 *   its claim → the entry's backoff.
 * - `dead_letter`: it is dead but its dead letter could not be published →
 *   the entry's backoff; only the publish is retried.
 * - `busy`: its dedupe key is claimed by a running handler → a short wait
 *   (see {@linkcode BUSY_DELAY_RANGE_MS}).
 * - `interrupted`: shutdown aborted its handler → at once, for whoever
 *   consumes next.
 * - `fault`: running it or carrying out its outcome failed unexpectedly →
 *   the entry's first delay, without backoff or jitter.
 */
export type RequeueReason = "retry" | "dead_letter" | "busy" | "interrupted" | "fault";

/** The entry settings a requeue delay depends on (a config `Entry` has them). */
export type RequeueSettings = Pick<TaskSettings, "requeueDelayMs" | "maxRequeueDelayMs">;

/**
 * A busy message comes back after `requeueDelayMs` clamped to this range
 * (jittered, capped by `maxRequeueDelayMs`). Not sooner: every `REQ` costs a
 * round trip and counts as an nsqd attempt. Not later: the claim's holder
 * usually finishes soon (most often the message's own twin, published
 * twice), and then this copy is finished as a duplicate.
 */
export const BUSY_DELAY_RANGE_MS = { min: 1_000, max: 5_000 } as const;

/**
 * The delay of the `REQ` that gives back a message delivered `attempts`
 * times, requeued for `reason`, in milliseconds. `retry` and `dead_letter`
 * double with each attempt (see {@linkcode retryDelay}); `busy` is the same
 * whatever the attempt. `random` is the jitter's source of numbers in [0, 1).
 *
 * @example
 * ```ts
 * import { requeueDelay } from "./requeue_delay.ts";
 *
 * const settings = { requeueDelayMs: 5_000, maxRequeueDelayMs: 900_000 };
 * requeueDelay("retry", 3, settings, () => 0.5); // 20000
 * requeueDelay("busy", 3, settings, () => 0.5); // 5000
 * requeueDelay("interrupted", 3, settings); // 0
 * ```
 */
export function requeueDelay(
  reason: RequeueReason,
  attempts: number,
  settings: RequeueSettings,
  random: () => number = Math.random,
): number {
  switch (reason) {
    case "retry":
    case "dead_letter":
      return retryDelay(attempts, settings.requeueDelayMs, settings.maxRequeueDelayMs, random);
    case "busy": {
      const { min, max } = BUSY_DELAY_RANGE_MS;
      const firstMs = Math.min(Math.max(settings.requeueDelayMs, min), max);
      return retryDelay(1, firstMs, settings.maxRequeueDelayMs, random);
    }
    case "interrupted":
      return 0;
    case "fault":
      return settings.requeueDelayMs;
  }
}
