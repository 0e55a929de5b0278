/**
 * Our callbacks inside nsqjs's socket handlers, where a throw would crash
 * the process.
 *
 * @module
 */

import { asError } from "../../error_text.ts";

/**
 * Runs one of our callbacks from inside nsqjs's socket handlers, where a
 * throw would crash the process: it is reported to `events.error` instead.
 */
export function guard(events: { error(error: Error): void }, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    try {
      events.error(asError(error));
    } catch {
      // The reporter itself failed; there is nobody left to tell.
    }
  }
}
