/**
 * How the daemon and its supervisor shut down: steps in a fixed order, each
 * run even when one before it failed.
 *
 * @module
 */

import { describeError } from "../error_text.ts";
import type { Logger } from "../worker/worker.ts";

/** One step of a shutdown: its name in the log, and what it does. */
export type ShutdownStep = readonly [name: string, run: () => void | Promise<void>];

/**
 * Runs `steps` one after another. A step that throws or rejects is logged
 * as `shutdown step failed` with its name, and the next one runs all the
 * same: a store that fails to close must not leave the HTTP server open.
 * Never rejects.
 *
 * @example
 * ```ts
 * import { runShutdownSteps } from "./shutdown_steps.ts";
 * import { logger } from "../observe/log.ts";
 *
 * await runShutdownSteps([
 *   ["entries", () => Promise.resolve()],
 *   ["store", () => Promise.reject(new Error("already closed"))],
 *   ["server", () => Promise.resolve()], // runs although "store" failed
 * ], logger("daemon"));
 * ```
 */
export async function runShutdownSteps(
  steps: readonly ShutdownStep[],
  log: Logger,
): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (error) {
      log.error("shutdown step failed", { step: name, error: describeError(error) });
    }
  }
}
