/**
 * nsqd's default limits, which the daemon keeps within so that nsqd never
 * refuses what it sends: a refusal is a fatal protocol error that closes the
 * connection and fails every other publish in flight on it.
 *
 * @module
 */

/**
 * nsqd's defaults for `--max-msg-size` (bytes of one message),
 * `--max-body-size` (bytes of one MPUB body) and `--max-req-timeout`
 * (milliseconds of a REQ or DPUB delay).
 *
 * @example
 * ```ts
 * import { NSQD_LIMITS } from "./nsqd_limits.ts";
 *
 * new Uint8Array(2_000_000).length > NSQD_LIMITS.msgBytes; // true: nsqd would refuse it
 * ```
 */
export const NSQD_LIMITS = {
  msgBytes: 1024 * 1024,
  bodyBytes: 5 * 1024 * 1024,
  deferMs: 60 * 60 * 1000,
} as const;
