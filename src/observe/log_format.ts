/**
 * A LogTape record as one line: a JSON object (`json`) or a human one-liner
 * (`pretty`). Formatting is the part of logging that can meet anything a
 * caller passed (cycles, BigInts, a throwing `toJSON`), so every value has a
 * printable form and a record that still fails has {@linkcode fallbackLine}.
 *
 * @module
 */

import type { LogLevel as TapeLevel, LogRecord } from "@logtape/logtape";
import type { LogLevel } from "../config/types.ts";
import { errorText } from "../error_text.ts";

/** The category every logger of ours lives under; their messages are written as given. */
export const ROOT_CATEGORY = "nsqworker";

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

/** A value inside a message: strings as they are, errors by their message. */
export function renderInline(value: unknown): string {
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

/** The record as one JSON object; `withStack` adds `<field>_stack` for error properties. */
export function formatJson(record: LogRecord, withStack: boolean): string {
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

/** The line of a record whose formatting threw: the fixed fields and `log_error`. */
export function fallbackLine(record: LogRecord, error: unknown): string {
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

/** The record as a human one-liner: time, level, message, `key=value` fields. */
export function formatPretty(record: LogRecord, color: boolean): string {
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
