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

import { configure, dispose, getLogger, type Logger as LogTapeLogger } from "@logtape/logtape";
import type { LogConfig, LogLevel } from "../config/types.ts";
import type { Logger } from "../worker/worker.ts";
import { renderInline, ROOT_CATEGORY } from "./log_format.ts";
import { logSink, writeStdout } from "./log_sink.ts";

/** Options of {@link setupLogging}. */
export interface LoggingOptions {
  /**
   * Receives each formatted line, without its trailing newline. Defaults to a
   * synchronous write to stdout that never throws. Colors are used only with
   * the default, and only when stdout is a terminal.
   */
  readonly write?: (line: string) => void;
}

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
    const sink = logSink(config, write, color);
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
