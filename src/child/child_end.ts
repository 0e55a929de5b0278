/**
 * Why a child process ended, told from how it ended and what it said last.
 *
 * @module
 */

/** Why a child process ended. */
export type ChildEndReason =
  /** It exited by itself (`Deno.exit`, a failed setup, its stdin closed). */
  | "exit"
  /** An uncaught error or unhandled rejection ended it. */
  | "crash"
  /** A handler outlived its timeout by `kill_grace`: the daemon killed it. */
  | "timeout_kill"
  /** Its heap passed `memory_limit` (or V8's own limit). */
  | "memory"
  /** A signal from outside the daemon ended it (`kill -9`). */
  | "killed"
  /** The daemon ended it on purpose (the entry stopped). */
  | "stopped";

/** Every reason a child is replaced for, e.g. to make one counter per reason up front. */
export const RESTART_REASONS = [
  "exit",
  "crash",
  "timeout_kill",
  "memory",
  "killed",
] as const satisfies readonly ChildEndReason[];

/** How a child process ended. */
export interface ChildEnd {
  readonly reason: ChildEndReason;
  readonly code: number;
  readonly signal: Deno.Signal | null;
  /** What it said last: its fatal error, or the last lines of its stderr. */
  readonly error: string;
}

const OUT_OF_MEMORY = /out of memory|heap limit/i;

/**
 * Why a child ended: what the daemon killed it for, else its heap (V8 ends
 * a process past its heap limit with SIGTRAP, after an "out of memory"
 * report), else a signal from outside, else an uncaught error it reported,
 * else an exit of its own.
 *
 * @example
 * ```ts
 * import { endReason } from "./child_end.ts";
 *
 * endReason({ success: false, code: 137, signal: "SIGKILL" }, null, false, []); // "killed"
 * ```
 */
export function endReason(
  status: Deno.CommandStatus,
  killedFor: ChildEndReason | null,
  reportedFatal: boolean,
  stderrTail: readonly string[],
): ChildEndReason {
  if (killedFor !== null) return killedFor;
  if (status.signal === "SIGTRAP" || stderrTail.some((line) => OUT_OF_MEMORY.test(line))) {
    return "memory";
  }
  if (status.signal !== null) return "killed";
  return reportedFatal ? "crash" : "exit";
}

/** An end as a few words: the reason and the exit code or signal. */
export function describeEnd(end: ChildEnd): string {
  const how = end.signal === null ? `exit code ${end.code}` : `signal ${end.signal}`;
  return `${end.reason}, ${how}`;
}
