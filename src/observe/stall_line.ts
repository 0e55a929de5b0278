/**
 * The one line the stall watchdog writes before it kills the process: in
 * the log's format, naming what the daemon's thread was running.
 *
 * @module
 */

import type { LogRecord } from "@logtape/logtape";
import type { LogConfig } from "../config/types.ts";
import { formatDuration } from "../config/duration.ts";
import { formatJson, formatPretty, ROOT_CATEGORY } from "./log_format.ts";
import type { BoardRecord, EntryName, StallSnapshot } from "./stall_board.ts";

/** What the line says beside the board. */
export interface StallLineOptions {
  /** The configured `stall_timeout`. */
  readonly stallTimeoutMs: number;
  /** How long the thread has gone without a heartbeat. */
  readonly stalledMs: number;
  /** The log's format; `pretty` is in color when `color`. */
  readonly format: LogConfig["format"];
  readonly color: boolean;
  /** The time of the line, in ms since the epoch. */
  readonly now: number;
}

/**
 * The fatal line, without its newline. Its level is `error`, the log's
 * highest; `topic`, `channel`, `worker`, `msg_id` and `attempts` name what
 * the thread started last since its last heartbeat (`in` says whether a
 * message or the worker's `setup()` or `teardown()`), and `in_flight` the
 * messages in flight at that heartbeat.
 *
 * @example
 * ```ts
 * import { StallBoard, readStallBoard } from "./stall_board.ts";
 * import { stallLine } from "./stall_line.ts";
 *
 * const board = new StallBoard();
 * const entry = board.entry({ topic: "pageviews", channel: "counter", worker: "demo/pageview" });
 * entry.started({ id: "0a1b2c3d4e5f6789", attempts: 1 });
 * stallLine(readStallBoard(board.buffer), board.names(), {
 *   stallTimeoutMs: 30_000,
 *   stalledMs: 30_400,
 *   format: "json",
 *   color: false,
 *   now: Date.now(),
 * });
 * ```
 */
export function stallLine(
  snapshot: StallSnapshot,
  names: ReadonlyMap<number, EntryName>,
  options: StallLineOptions,
): string {
  const properties: Record<string, unknown> = {
    stall_timeout: formatDuration(options.stallTimeoutMs),
    stalled_ms: Math.round(options.stalledMs),
  };
  const { last } = snapshot;
  if (last !== null) {
    Object.assign(properties, { in: last.phase }, named(last.entry, names));
    if (last.id !== null) Object.assign(properties, { msg_id: last.id, attempts: last.attempts });
  }
  properties.in_flight = snapshot.inFlight.map((record) => inFlight(record, names));
  if (snapshot.unlisted > 0) properties.in_flight_unlisted = snapshot.unlisted;
  const message = `the daemon's thread has not turned for ${
    formatDuration(Math.round(options.stalledMs))
  } (stall_timeout ${formatDuration(options.stallTimeoutMs)}): ${
    last === null ? "" : `it last started ${whatStarted(last, names)}; `
  }killing the process (SIGKILL) for its service manager to restart it`;
  const record: LogRecord = {
    category: [ROOT_CATEGORY, "watchdog"],
    level: "fatal",
    message: [message],
    rawMessage: message,
    timestamp: options.now,
    properties,
  };
  return options.format === "json"
    ? formatJson(record, false)
    : formatPretty(record, options.color);
}

function named(entry: number, names: ReadonlyMap<number, EntryName>): EntryName {
  // An entry that left the board since: its number is all there is.
  return names.get(entry) ?? { topic: `entry ${entry}`, channel: "?", worker: "?" };
}

function inFlight(record: BoardRecord, names: ReadonlyMap<number, EntryName>) {
  return { ...named(record.entry, names), msg_id: record.id, attempts: record.attempts };
}

function whatStarted(
  last: NonNullable<StallSnapshot["last"]>,
  names: ReadonlyMap<number, EntryName>,
): string {
  const { topic, channel, worker } = named(last.entry, names);
  const what = last.phase === "message" ? `message ${last.id}` : `${last.phase}()`;
  return `${what} of ${topic}/${channel} (worker ${worker})`;
}
