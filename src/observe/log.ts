/**
 * Logging for the daemon and its workers, on top of LogTape: one JSON object
 * a line (or a human one-liner with `pretty`) on stdout, filtered by the
 * configured level.
 *
 * Every logger lives under the `nsqworker` category. Messages are written as
 * given: unlike LogTape's own methods, `{name}` in a message is not a
 * placeholder, because messages often quote JSON bodies.
 *
 * @example
 * ```ts
 * import { boundLogger, flushLogging, logger, setupLogging } from "./log.ts";
 *
 * await setupLogging({ level: "info", format: "json" });
 * const log = boundLogger(logger("consumer"), { topic: "pageviews", channel: "counter" });
 * log.info("connected", { nsqd: "127.0.0.1:4150" });
 * await flushLogging();
 * ```
 *
 * @module
 */

import {
  configure,
  dispose,
  getLogger,
  type Logger as LogTapeLogger,
  type LogLevel as TapeLevel,
  type LogRecord,
} from "@logtape/logtape";
import type { LogConfig, LogLevel } from "../config/types.ts";
import type { Logger } from "../worker/worker.ts";
import { errorText } from "../error_text.ts";
import { writeAllSync } from "../write_all_sync.ts";
import { activeTraceIds, TRACING_ON } from "./tracing_switch.ts";

/** Options of {@link setupLogging}. */
export interface LoggingOptions {
  /**
   * Receives each formatted line, without its trailing newline. Defaults to a
   * synchronous write to stdout that never throws. Colors are used only with
   * the default, and only when stdout is a terminal.
   */
  readonly write?: (line: string) => void;
}

const ROOT_CATEGORY = "nsqworker";

/**
 * LogTape's own answer to `isEnabledFor()` for each level, read once after
 * every {@link setupLogging}: the hot path asks per message whether a debug
 * line would be written, and a property read costs less than LogTape's walk
 * up the category tree. Nothing is logged before the first setup.
 */
let enabled: Readonly<Record<LogLevel, boolean>> = {
  debug: false,
  info: false,
  warning: false,
  error: false,
};

/** Serializes setup and flush: LogTape refuses a reconfiguration while one runs. */
let pending: Promise<unknown> = Promise.resolve();

function serialized<T>(step: () => Promise<T>): Promise<T> {
  const run = pending.then(step, step);
  pending = run.catch(() => {});
  return run;
}

/**
 * Configures logging from the `log:` section. Calling it again replaces the
 * previous configuration (reload); lines logged meanwhile go to the old one.
 *
 * @example
 * ```ts
 * import { setupLogging } from "./log.ts";
 *
 * const lines: string[] = [];
 * await setupLogging({ level: "debug", format: "json" }, { write: (line) => lines.push(line) });
 * ```
 */
export function setupLogging(config: LogConfig, options: LoggingOptions = {}): Promise<void> {
  return serialized(async () => {
    const write = options.write ?? writeStdout;
    const color = options.write === undefined && !Deno.noColor && Deno.stdout.isTerminal();
    const sink = makeSink(config, write, color);
    await configure({
      reset: true,
      sinks: { out: sink },
      loggers: [
        { category: ROOT_CATEGORY, sinks: ["out"], lowestLevel: config.level },
        // Configuring the meta logger ourselves silences its "loggers are
        // configured" notice while keeping real diagnostics, in our format.
        {
          category: ["logtape", "meta"],
          sinks: ["out"],
          lowestLevel: "warning",
          parentSinks: "override",
        },
      ],
    });
    const root = getLogger(ROOT_CATEGORY);
    enabled = {
      debug: root.isEnabledFor("debug"),
      info: root.isEnabledFor("info"),
      warning: root.isEnabledFor("warning"),
      error: root.isEnabledFor("error"),
    };
  });
}

/**
 * Flushes and disposes the sinks; call it last at shutdown. Lines are written
 * synchronously, so lines logged afterwards still come out.
 *
 * @example
 * ```ts
 * import { flushLogging } from "./log.ts";
 *
 * await flushLogging();
 * ```
 */
export function flushLogging(): Promise<void> {
  return serialized(dispose);
}

/**
 * A logger for a part of the daemon; its category is `nsqworker` followed by
 * `category`, written as the `logger` field (`nsqworker.consumer`).
 *
 * @example
 * ```ts
 * import { logger } from "./log.ts";
 *
 * logger("supervisor").warning("entry failed to start", { topic: "pageviews" });
 * ```
 */
export function logger(...category: string[]): Logger {
  return new TapeLogger(getLogger([ROOT_CATEGORY, ...category]));
}

/**
 * Whether records of `level` are written now: lets a hot path skip building
 * the properties of a line that would be dropped.
 */
export function isLogged(level: LogLevel): boolean {
  return enabled[level];
}

/**
 * A logger that adds `properties` to every record it writes; properties given
 * to a call override them. Works on any {@link Logger}, not only ours.
 *
 * @example
 * ```ts
 * import { boundLogger, logger } from "./log.ts";
 *
 * const entry = boundLogger(logger("worker"), { topic: "pageviews", channel: "counter" });
 * boundLogger(entry, { msg_id: "0a1b2c3d4e5f6789", attempts: 1 }).debug("finish");
 * ```
 */
export function boundLogger(base: Logger, properties: Record<string, unknown>): Logger {
  if (base instanceof TapeLogger) return base.with(properties);
  const fields = { ...properties };
  const merge = (extra?: Record<string, unknown>) =>
    extra === undefined ? fields : { ...fields, ...extra };
  return {
    debug: (message, extra) => base.debug(message, merge(extra)),
    info: (message, extra) => base.info(message, merge(extra)),
    warning: (message, extra) => base.warning(message, merge(extra)),
    error: (message, extra) => base.error(message, merge(extra)),
  };
}

/**
 * Our {@link Logger} on a LogTape logger: bound fields are LogTape's
 * `with()`, the level check is LogTape's, and a log call never throws.
 */
class TapeLogger implements Logger {
  readonly #tape: LogTapeLogger;

  constructor(tape: LogTapeLogger) {
    this.#tape = tape;
  }

  with(properties: Record<string, unknown>): TapeLogger {
    return new TapeLogger(this.#tape.with(properties));
  }

  debug(message: string, properties?: Record<string, unknown>): void {
    try {
      this.#tape.debug(text(message), properties);
    } catch {
      // A log call must never fail the handler that made it.
    }
  }

  info(message: string, properties?: Record<string, unknown>): void {
    try {
      this.#tape.info(text(message), properties);
    } catch {
      // As in debug().
    }
  }

  warning(message: string, properties?: Record<string, unknown>): void {
    try {
      this.#tape.warning(text(message), properties);
    } catch {
      // As in debug().
    }
  }

  error(message: string, properties?: Record<string, unknown>): void {
    try {
      this.#tape.error(text(message), properties);
    } catch {
      // As in debug().
    }
  }
}

/** Workers written in JavaScript may pass a non-string message; LogTape would take an object for properties. */
function text(message: unknown): string {
  return typeof message === "string" ? message : renderInline(message);
}

function writeStdout(line: string): void {
  try {
    writeAllSync(Deno.stdout, line + "\n");
  } catch {
    // stdout is gone (closed pipe): there is nowhere left to report it.
  }
}

type Format = (record: LogRecord) => string;

function makeSink(config: LogConfig, write: (line: string) => void, color: boolean) {
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

/** LogTape has two more levels than we do; its meta logger uses `fatal`. */
function levelName(level: TapeLevel): LogLevel {
  switch (level) {
    case "trace":
      return "debug";
    case "fatal":
      return "error";
    default:
      return level;
  }
}

function renderMessage(record: LogRecord): string {
  // Our loggers give LogTape the text as it must appear; LogTape reads
  // `{name}` in it as a placeholder when it builds `message`, so the text is
  // taken from `rawMessage`, which LogTape documents as the message unprocessed.
  if (typeof record.rawMessage === "string" && record.category[0] === ROOT_CATEGORY) {
    return record.rawMessage;
  }
  const parts = record.message;
  if (parts.length === 1 && typeof parts[0] === "string") return parts[0];
  let text = "";
  for (const part of parts) text += typeof part === "string" ? part : renderInline(part);
  return text;
}

function renderInline(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.message;
  return prettyValue(value);
}

const RESERVED = new Set(["time", "level", "msg", "logger"]);

/** Busy loggers write many lines within one millisecond; format its time once. */
let isoMillis = Number.NaN;
let isoText = "";

function isoTime(millis: number): string {
  if (millis !== isoMillis) {
    isoText = new Date(millis).toISOString();
    isoMillis = millis;
  }
  return isoText;
}

function formatJson(record: LogRecord, withStack: boolean): string {
  const line: Record<string, unknown> = {
    time: isoTime(record.timestamp),
    level: levelName(record.level),
    msg: renderMessage(record),
    logger: record.category.join("."),
  };
  // Most lines hold only strings and numbers, which JSON.stringify takes
  // several times faster without a replacer.
  let plain = true;
  const properties = record.properties;
  for (const key in properties) {
    const value = properties[key];
    // A property must not overwrite the fixed fields, nor be lost.
    const name = RESERVED.has(key) ? `_${key}` : key;
    if (value instanceof Error) {
      line[name] = value.message;
      if (withStack && value.stack !== undefined) line[`${name}_stack`] = value.stack;
    } else {
      line[name] = value;
      if (plain && !isPlainJson(value)) plain = false;
    }
  }
  return plain ? JSON.stringify(line) : stringifyLine(line);
}

function isPlainJson(value: unknown): boolean {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return true;
    default:
      return value === null;
  }
}

/** Stringifies field by field when the whole fails (a throwing `toJSON`), so the line survives. */
function stringifyLine(line: Record<string, unknown>): string {
  const whole = safeJson(line);
  if (whole !== undefined) return whole;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(line)) {
    const text = safeJson(value) ?? (value === undefined ? undefined : '"[Unserializable]"');
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${parts.join(",")}}`;
}

/** JSON.stringify that never throws; undefined when the value has no JSON form. */
function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, jsonReplacer());
  } catch {
    return undefined;
  }
}

/**
 * Makes values JSON.stringify rejects or loses printable. Only ancestors
 * count as cycles, so an object referenced twice is written twice.
 */
function jsonReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  // JSON.stringify calls the replacer with the holder as `this`: the stack of
  // holders tells where in the tree we are, the originals what is an ancestor.
  const holders: unknown[] = [];
  const originals: unknown[] = [];
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === "bigint") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    if (value instanceof Error) return value.message;
    if (ArrayBuffer.isView(value)) return `[${value.constructor.name} ${value.byteLength} bytes]`;
    while (holders.length > 0 && holders[holders.length - 1] !== this) {
      holders.pop();
      originals.pop();
    }
    if (originals.includes(value)) return "[Circular]";
    const out = value instanceof Map
      ? Object.fromEntries(value)
      : value instanceof Set
      ? [...value]
      : value;
    holders.push(out);
    originals.push(value);
    return out;
  };
}

function fallbackLine(record: LogRecord, error: unknown): string {
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: levelName(record.level),
    msg: typeof record.rawMessage === "string" ? record.rawMessage : "",
    logger: record.category.join("."),
    log_error: errorText(error),
  });
}

const PRETTY_LEVELS: Readonly<Record<LogLevel, string>> = {
  debug: "DEBUG",
  info: "INFO ",
  warning: "WARN ",
  error: "ERROR",
};

const LEVEL_COLORS: Readonly<Record<LogLevel, string>> = {
  debug: "\x1b[90m",
  info: "\x1b[32m",
  warning: "\x1b[33m",
  error: "\x1b[31m",
};
const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

function formatPretty(record: LogRecord, color: boolean): string {
  const level = levelName(record.level);
  const d = new Date(record.timestamp);
  const time = `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${
    pad(d.getMilliseconds(), 3)
  }`;
  let line = color
    ? `${DIM}${time}${RESET} ${LEVEL_COLORS[level]}${PRETTY_LEVELS[level]}${RESET} `
    : `${time} ${PRETTY_LEVELS[level]} `;
  line += oneLine(renderMessage(record));
  const properties = record.properties;
  for (const key in properties) line += field(key, prettyValue(properties[key]), color);
  return line + field("logger", record.category.join("."), color);
}

function field(key: string, value: string, color: boolean): string {
  return color ? ` ${DIM}${key}=${RESET}${value}` : ` ${key}=${value}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Keeps the line a one-liner: control characters are shown escaped. */
function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

function prettyValue(value: unknown): string {
  if (typeof value === "string") return bareOrQuoted(value);
  if (value instanceof Error) return bareOrQuoted(value.message);
  if (typeof value === "function") return "[Function]";
  if (typeof value === "object" && value !== null) return safeJson(value) ?? "[Unserializable]";
  return String(value);
}

/** Quoted only when needed to read the line back: empty, spaces, quotes, `=` or control characters. */
function bareOrQuoted(text: string): string {
  // deno-lint-ignore no-control-regex
  return text === "" || /[\s"=\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : text;
}
