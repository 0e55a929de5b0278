/**
 * The bounds of an entry's task settings, declared once: the config refuses
 * a value outside them at its key, and the task runner refuses one that
 * reaches it another way (the test kit's options).
 *
 * @module
 */

import { NSQD_LIMITS } from "./nsqd_limits.ts";

/** The settings of an entry that the task runner applies to each message. */
export interface TaskSettings {
  /** The attempt at which a failure is dead-lettered rather than retried. */
  readonly maxAttempts: number;
  /** The retry delay after the first attempt; it doubles with each attempt. */
  readonly requeueDelayMs: number;
  /** The cap of the retry delay. */
  readonly maxRequeueDelayMs: number;
  /** The handler's deadline. */
  readonly timeoutMs: number;
}

/** The smallest and the largest value a setting may take. */
export interface SettingBounds {
  readonly min: number;
  readonly max: number;
}

/**
 * Every {@linkcode TaskSettings} field's bounds; durations in milliseconds.
 *
 * @example
 * ```ts
 * import { SETTING_BOUNDS } from "./setting_bounds.ts";
 *
 * SETTING_BOUNDS.maxAttempts; // { min: 1, max: 1000 }
 * ```
 */
export const SETTING_BOUNDS = {
  maxAttempts: { min: 1, max: 1000 },
  requeueDelayMs: { min: 0, max: NSQD_LIMITS.deferMs },
  // nsqd refuses a REQ delay above its --max-req-timeout.
  maxRequeueDelayMs: { min: 0, max: NSQD_LIMITS.deferMs },
  timeoutMs: { min: 1, max: 24 * 3_600_000 },
} as const satisfies Record<keyof TaskSettings, SettingBounds>;
