/**
 * The kit's `ctx.log`: each line kept as a {@linkcode LogRecord}.
 *
 * @module
 */

import type { Logger } from "../worker/worker.ts";

/** One log line of the handler, with the fields bound to `ctx.log` (`msg_id`, `attempts`). */
export interface LogRecord {
  readonly level: "debug" | "info" | "warning" | "error";
  readonly msg: string;
  readonly properties: Record<string, unknown>;
}

/** A logger that appends each line to `logs`. */
export function recordingLogger(logs: LogRecord[]): Logger {
  const at = (level: LogRecord["level"]) => (msg: string, properties?: Record<string, unknown>) => {
    logs.push({ level, msg, properties: { ...properties } });
  };
  return { debug: at("debug"), info: at("info"), warning: at("warning"), error: at("error") };
}
