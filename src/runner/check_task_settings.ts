/**
 * The task runner's check of its entry settings: a config `Entry` is already
 * within bounds, but a runner built by hand (a test, the testing module)
 * must not run with a setting nsqd would refuse or that makes no sense.
 *
 * @module
 */

import { SETTING_BOUNDS, type TaskSettings } from "../config/setting_bounds.ts";

/**
 * Throws a `RangeError` naming the first setting outside its {@linkcode SETTING_BOUNDS}.
 *
 * @example
 * ```ts
 * import { checkTaskSettings } from "./check_task_settings.ts";
 *
 * checkTaskSettings({
 *   maxAttempts: 5,
 *   requeueDelayMs: 5_000,
 *   maxRequeueDelayMs: 900_000,
 *   timeoutMs: 60_000,
 * }); // returns; with maxAttempts: 0 it throws a RangeError
 * ```
 */
export function checkTaskSettings(settings: TaskSettings): void {
  for (const name of Object.keys(SETTING_BOUNDS) as (keyof TaskSettings)[]) {
    const { min, max } = SETTING_BOUNDS[name];
    const value = settings[name];
    // A count of attempts is whole; a duration may be any number of milliseconds.
    const count = name === "maxAttempts";
    if (value >= min && value <= max && (!count || Number.isInteger(value))) continue;
    throw new RangeError(
      `Cannot create a task runner as 'settings.${name}' must be ${
        count ? "an integer" : "a number"
      } from ${min} to ${max}: current value is ${String(value)}`,
    );
  }
}
