/**
 * Where formatted lines go: the LogTape sink that formats a record (with the
 * active span's ids when tracing is on) and hands the line to a writer. Like
 * LogTape's own sinks it never throws into the code that logged.
 *
 * @module
 */

import type { LogRecord, Sink } from "@logtape/logtape";
import type { LogConfig } from "../config/types.ts";
import { writeAllSync } from "../write_all_sync.ts";
import { fallbackLine, formatJson, formatPretty } from "./log_format.ts";
import { activeTraceIds, TRACING_ON } from "./tracing_switch.ts";

/** The default writer: a synchronous write to stdout that never throws. */
export function writeStdout(line: string): void {
  try {
    writeAllSync(Deno.stdout, line + "\n");
  } catch {
    // stdout is gone (closed pipe): there is nowhere left to report it.
  }
}

type Format = (record: LogRecord) => string;

/**
 * The sink of the `log:` section: one line per record in `config.format`,
 * passed to `write`; `color` only matters to `pretty`.
 */
export function logSink(
  config: LogConfig,
  write: (line: string) => void,
  color: boolean,
): Sink {
  const withStack = config.level === "debug";
  const format: Format = config.format === "json"
    ? (record) => formatJson(record, withStack)
    : (record) => formatPretty(record, color);
  const sink = (record: LogRecord): void => {
    let line: string;
    try {
      line = format(TRACING_ON ? withTraceIds(record) : record);
    } catch (error) {
      try {
        line = fallbackLine(record, error);
      } catch {
        return;
      }
    }
    try {
      write(line);
    } catch {
      // Sinks never throw into callers; a failing writer loses the line.
    }
  };
  return sink;
}

/**
 * The record with the active span's `trace_id` and `span_id`: LogTape calls
 * sinks synchronously, in the context of the code that logged.
 */
function withTraceIds(record: LogRecord): LogRecord {
  const ids = activeTraceIds();
  return ids === null ? record : { ...record, properties: { ...record.properties, ...ids } };
}
