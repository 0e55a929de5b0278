/**
 * Counts the system timers that code arms.
 *
 * @module
 */

/** Runs `fn` and gives how many times it called `setTimeout`. */
export function countTimers(fn: () => void): number {
  const setTimeoutBefore = globalThis.setTimeout;
  let armed = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    armed++;
    return setTimeoutBefore(...args);
  }) as typeof setTimeout;
  try {
    fn();
  } finally {
    globalThis.setTimeout = setTimeoutBefore;
  }
  return armed;
}
