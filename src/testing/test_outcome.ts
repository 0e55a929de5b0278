/**
 * The outcome of a message as the kit gives it: what happens to the
 * message, without the durations that vary from run to run.
 *
 * @module
 */

import type { DeadReason, Outcome } from "../runner/outcome.ts";

/** The outcome (docs/workers.md, "Message outcomes") a message got, as the daemon would carry it out. */
export interface TestOutcome {
  readonly kind: Outcome["kind"];
  /** Why it was dead-lettered (`dead` only). */
  readonly reason?: DeadReason;
  /** What went wrong (`retry` and `dead`): the dead letter's `error`. */
  readonly error?: string;
  /** How long nsqd is asked to wait before redelivering it (`retry` and `busy`). */
  readonly delayMs?: number;
}

/** The fields of an outcome that say what happens to the message; durations vary from run to run. */
export function testOutcome(outcome: Outcome): TestOutcome {
  switch (outcome.kind) {
    case "dead":
      return { kind: "dead", reason: outcome.reason, error: outcome.error };
    case "retry":
      return { kind: "retry", error: outcome.error, delayMs: outcome.delayMs };
    case "busy":
      return { kind: "busy", delayMs: outcome.delayMs };
    default:
      return { kind: outcome.kind };
  }
}
