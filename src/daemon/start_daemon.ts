/**
 * The composition root: a prepared config (see `prepare`) → logging → the
 * stall watchdog → the dedupe store → the supervisor → the HTTP surface,
 * returned as a handle.
 * The command line (`nsqworker run`), the in-process test daemon and the
 * tests of the HTTP surface all start the daemon here; signals, exit codes
 * and `Deno.exit` belong to the command line alone.
 *
 * @module
 */

import type { Config, HostPort, LogConfig } from "../config/types.ts";
import { createStore } from "../dedupe/create_store.ts";
import { createHandler } from "./http/handler.ts";
import { type HttpServer, startHttpServer } from "./http/server.ts";
import { type DaemonSnapshot, type EntrySnapshot, snapshotSupervisor } from "./http/snapshot.ts";
import { supervisorDeps } from "./http/supervisor_deps.ts";
import { flushLogging, logger, setupLogging } from "../observe/log.ts";
import type { ConsumerTimings } from "../nsq/consumer.ts";
import type { Prepared } from "./prepare.ts";
import type { ChildProgram } from "../child/child_program.ts";
import type { ReloadPlan } from "./reload_plan.ts";
import { setEntryPaused } from "./set_entry_paused.ts";
import { runShutdownSteps } from "./shutdown_steps.ts";
import { HistorySampler } from "./history_sampler.ts";
import { StallBoard } from "../observe/stall_board.ts";
import { startStallWatchdog, type WatchdogSettings } from "./stall_watchdog.ts";
import { Supervisor } from "./supervisor.ts";
import { VERSION } from "../version.ts";

/** Settings of a daemon beyond its config. */
export interface StartDaemonOptions {
  /** Over the config's `log:` at start and after every reload (the command line's `--pretty`). */
  readonly log?: Partial<LogConfig>;
  /** Receives each log line, without its newline; by default lines go to stdout. */
  readonly writeLog?: (line: string) => void;
  /** Over the consumers' timings (`--lookupd-poll-interval`; faster reconnects in tests). */
  readonly timings?: Partial<ConsumerTimings>;
  /**
   * How long a rendering of `/stats` and `/metrics` is served again
   * (default `RENDER_MAX_AGE_MS`); tests that read figures right after
   * changing them set 0.
   */
  readonly renderMaxAgeMs?: number;
  /** How entries with `processes` start their children (default: this program's command line). */
  readonly childProgram?: ChildProgram;
  /** How often the page's history takes a sample (default 5 s); tests take one faster. */
  readonly historySampleMs?: number;
}

/** A running daemon. */
export interface Daemon extends AsyncDisposable {
  /** The config in force: the last one applied. */
  readonly config: Config;
  /** The supervisor, for a look at its entries. */
  readonly supervisor: Supervisor;
  /** Where the HTTP surface listens (the real port when `http.listen` asked for 0); null without one. */
  readonly http: { readonly address: HostPort; readonly addressText: string } | null;
  /**
   * Resolves once every entry's `setup()` has run; an entry whose setup
   * failed stays failed, the others run. Never rejects.
   */
  readonly started: Promise<void>;
  /**
   * Applies a new prepared config (see `Supervisor.reload`) and its `log:`
   * section. Rejects, and keeps the running config, once shutdown has begun.
   */
  reload(next: Prepared): Promise<ReloadPlan>;
  /** Pauses an entry (RDY 0 on every nsqd); its figures, or null when no entry has this topic and channel. */
  pause(topic: string, channel: string): EntrySnapshot | null;
  /** Resumes a paused entry; its figures, or null when no entry has this topic and channel. */
  resume(topic: string, channel: string): EntrySnapshot | null;
  /** The figures of `/stats`, now. */
  stats(): DaemonSnapshot;
  /**
   * Drains and stops the entries (the publisher and the dedupe store with
   * them), then closes the HTTP surface, then stops the stall watchdog, then
   * flushes the log. Every step runs even when one fails; a second call
   * returns the first one's promise.
   */
  shutdown(): Promise<void>;
}

/**
 * Starts a daemon for `prepared`: it resolves once the HTTP surface listens
 * (so `/ready` says 503 while the workers' `setup()` runs) and the entries
 * are starting; `started` says when they have. A port that cannot be taken
 * rejects before any entry starts.
 *
 * @example
 * ```ts ignore
 * import { readConfigDraft } from "../config/load.ts";
 * import { prepare } from "./prepare.ts";
 * import { startDaemon } from "./start_daemon.ts";
 *
 * await using daemon = await startDaemon(await prepare(await readConfigDraft("config.yaml")));
 * await daemon.started;
 * daemon.stats().readiness.ready;
 * ```
 */
export async function startDaemon(
  prepared: Prepared,
  options: StartDaemonOptions = {},
): Promise<Daemon> {
  const { config, workers, connection } = prepared;
  const applyLog = (log: LogConfig) =>
    setupLogging(
      { ...log, ...options.log },
      options.writeLog ? { write: options.writeLog } : {},
    );
  await applyLog(config.log);
  const log = logger("daemon");
  const watchdogSettings = (next: Config): WatchdogSettings => {
    const { format } = { ...next.log, ...options.log };
    return {
      stallTimeoutMs: next.stallTimeoutMs,
      format,
      color: format === "pretty" && !Deno.noColor && Deno.stderr.isTerminal(),
    };
  };
  // First: a worker's setup() that never returns stalls the thread as a handler can.
  const board = new StallBoard();
  const watchdog = await startStallWatchdog(board, watchdogSettings(config), logger("watchdog"));
  let supervisor: Supervisor;
  let http: HttpServer | null;
  const info = { version: VERSION, startedAt: Date.now() };
  try {
    const store = await createStore(config.dedupe, logger("dedupe"));
    supervisor = new Supervisor({
      config,
      workers,
      store,
      connection,
      board,
      ...(options.timings ? { timings: options.timings } : {}),
      ...(options.childProgram ? { childProgram: options.childProgram } : {}),
    });
    http = await listenHttp(config, supervisor, info, options);
  } catch (error) {
    watchdog.stop();
    throw error;
  }

  log.info("starting", { config: config.file, entries: config.workers.length });
  const started = supervisor.start();
  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    stopping ??= runShutdownSteps([
      ["supervisor", () => supervisor.shutdown()],
      // Only now: while the entries drained, /ready answered 503.
      ["http", () => http?.shutdown()],
      // Only now: a handler that blocks the drain is still caught.
      ["watchdog", () => watchdog.stop()],
      ["log", () => flushLogging()],
    ], log);
  return {
    get config() {
      return supervisor.config;
    },
    supervisor,
    http: http && { address: http.address, addressText: http.addressText },
    started,
    async reload(next) {
      const plan = await supervisor.reload(next.config, next.workers, next.connection);
      await applyLog(next.config.log);
      watchdog.configure(watchdogSettings(next.config));
      return plan;
    },
    pause: (topic, channel) => setEntryPaused(supervisor, topic, channel, true),
    resume: (topic, channel) => setEntryPaused(supervisor, topic, channel, false),
    stats: () => snapshotSupervisor(supervisor, info),
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/**
 * Serves the HTTP surface on `http.listen` (null: none). A port that cannot
 * be taken shuts the supervisor down (closing the dedupe store) and throws.
 */
async function listenHttp(
  config: Config,
  supervisor: Supervisor,
  info: { readonly version: string; readonly startedAt: number },
  options: StartDaemonOptions,
): Promise<HttpServer | null> {
  const { listen, token } = config.http;
  if (listen === null) return null;
  const log = logger("http");
  const history = new HistorySampler(() => supervisor.entries, {
    ...(options.historySampleMs ? { intervalMs: options.historySampleMs } : {}),
  });
  const closing = new AbortController();
  const handler = createHandler({
    ...supervisorDeps(supervisor, { ...info, token, log, history, closing: closing.signal }),
    ...(options.renderMaxAgeMs === undefined ? {} : { renderMaxAgeMs: options.renderMaxAgeMs }),
  });
  let listening: HttpServer;
  try {
    listening = startHttpServer(handler, listen);
  } catch (error) {
    await supervisor.shutdown();
    throw error;
  }
  history.start();
  // The page's live streams end first, or the server would wait on them.
  const shutdown = () => {
    history.stop();
    closing.abort();
    return listening.shutdown();
  };
  const server: HttpServer = { ...listening, shutdown, [Symbol.asyncDispose]: shutdown };
  log.info("http listening", {
    address: server.addressText,
    pause_resume: token === null ? "disabled (no http.token)" : "enabled",
  });
  return server;
}
