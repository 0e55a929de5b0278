/**
 * Waiting on a promise for a bounded time.
 *
 * @module
 */

/** What {@link withTimeout} resolves to when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * Settles as `promise` does, or resolves to {@link TIMED_OUT} after `ms`
 * milliseconds, whichever comes first. Its timer is cleared either way, so
 * it never keeps the process (or a test's sanitizer) waiting; a rejection of
 * `promise` after the time ran out is handled, not left unhandled.
 *
 * @example
 * ```ts
 * import { TIMED_OUT, withTimeout } from "./with_timeout.ts";
 *
 * const answer = await withTimeout(fetch("http://127.0.0.1:4151/ping"), 1_000);
 * if (answer === TIMED_OUT) console.log("nsqd did not answer within 1s");
 * ```
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  return Promise.race([promise, elapsed]).finally(() => clearTimeout(timer));
}
