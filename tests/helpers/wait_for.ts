/**
 * Polling for a condition, the way tests wait on something (a channel drained,
 * a process up) instead of sleeping a fixed time.
 *
 * @module
 */

/** Options of {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Default 10 000. */
  timeoutMs?: number;
  /** Pause between checks. Default 25. */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  message?: string;
}

/**
 * Polls `cond` until it returns true. An error thrown by `cond` ends the wait
 * and propagates.
 *
 * @example
 * ```ts
 * await waitFor(async () => (await nsq.topic(topic))?.depth === 0, { message: "topic drained" });
 * ```
 *
 * @throws {Error} when `cond` is still false after `timeoutMs`.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 25, message = "condition" } = options;
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, remaining)));
  }
}
