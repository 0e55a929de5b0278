/**
 * The bounds of an entry's task settings, declared once: the config refuses
 * a value outside them at its key, and the task runner refuses one that
 * reaches it another way (the test kit's options).
 *
 * @module
 */

import { NSQD_LIMITS } from "../nsq/nsqd_limits.ts";
import type { TaskSettings } from "./task_runner.ts";

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
