/**
 * The composition root of `nsqworker run`: config and workers (checked by
 * `prepare`, as `check` does) → logging → supervisor, with the process's
 * signals. The only place besides main.ts
 * that touches the process.
 *
 * @module
 */

import { readConfigDraft } from "../config/load.ts";
import { watchConfigFile } from "./config_watcher.ts";
import type { Config, LogConfig } from "../config/types.ts";
import { createStore } from "../dedupe/create_store.ts";
import { createHandler } from "./http/handler.ts";
import { type HttpServer, startHttpServer } from "./http/server.ts";
import { supervisorDeps } from "./http/supervisor_deps.ts";
import { flushLogging, logger, setupLogging } from "../observe/log.ts";
import type { ConsumerTimings } from "../nsq/consumer.ts";
import { Supervisor } from "./supervisor.ts";
import { VERSION } from "../version.ts";
import { prepare } from "./prepare.ts";
import { moduleSource } from "../worker/worker_loader.ts";
import { errorText } from "../error_text.ts";

/** Settings of a daemon run. */
export interface DaemonOptions {
  readonly configPath: string;
  /** Overrides `log:` from the config (the dev loop uses `pretty`). */
  readonly log?: Partial<LogConfig>;
  /** Where worker modules come from; only tests point it elsewhere. */
  readonly workersDir?: URL;
  readonly timings?: Partial<ConsumerTimings>;
  /** Reload when the config file changes, not only on SIGHUP (the dev loop). */
  readonly reloadOnChange?: boolean;
}

/**
 * Runs until SIGTERM or SIGINT, then shuts down gracefully and resolves.
 * A second signal during the shutdown exits at once with code 1 (nsqd
 * redelivers what was in flight). Config and worker errors throw before
 * anything connects.
 */
export async function runDaemon(options: DaemonOptions): Promise<void> {
  const sources = { workers: moduleSource(options.workersDir) };
  const { config, workers, connection } = await prepare(
    await readConfigDraft(options.configPath),
    sources,
  );
  await setupLogging({ ...config.log, ...options.log });
  const log = logger("daemon");
  const store = await createStore(config.dedupe, logger("dedupe"));
  const supervisor = new Supervisor({
    config,
    workers,
    store,
    connection,
    ...(options.timings ? { timings: options.timings } : {}),
  });
  const http = await listenHttp(config, supervisor);

  const stopped = Promise.withResolvers<void>();
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const onSignal = (signal: Deno.Signal) => () => {
    if (supervisor.draining) {
      log.warning("second signal: exiting now", { signal });
      Deno.exit(1);
    }
    log.info("signal received: draining", { signal });
    supervisor.shutdown().then(stopped.resolve, stopped.reject);
  };
  // A config that fails to load is logged and the running one kept; a valid
  // one is applied whole by the supervisor.
  const reload = async (reason: string) => {
    log.info("reloading the config", { reason, config: options.configPath });
    try {
      const next = await prepare(await readConfigDraft(options.configPath), sources);
      await supervisor.reload(next.config, next.workers, next.connection);
      await setupLogging({ ...next.config.log, ...options.log });
    } catch (error) {
      log.error("reload refused; the running config stays", {
        error: errorText(error),
      });
    }
  };
  const listeners = [
    ...signals.map((signal) => [signal, onSignal(signal)] as const),
    ["SIGHUP", () => void reload("SIGHUP")] as const,
  ];
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  const watcher = options.reloadOnChange ? watchConfigFile(options.configPath, reload) : null;

  log.info("starting", { config: config.file, entries: config.workers.length });
  // A signal while workers' setup() still runs must end the run all the same.
  await Promise.race([supervisor.start(), stopped.promise]);
  try {
    await stopped.promise;
  } finally {
    watcher?.close();
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
    // Only now: while the entries drained, /ready answered 503.
    await http?.shutdown();
    await flushLogging();
  }
}

/**
 * Serves the HTTP surface on `http.listen` (null: none). It listens before
 * the entries start, so `/ready` says 503 while their `setup()` runs, and a
 * port in use fails the start before anything connects.
 */
async function listenHttp(config: Config, supervisor: Supervisor): Promise<HttpServer | null> {
  const { listen, token } = config.http;
  if (listen === null) return null;
  const log = logger("http");
  const handler = createHandler(
    supervisorDeps(supervisor, { version: VERSION, startedAt: Date.now(), token, log }),
  );
  let server: HttpServer;
  try {
    server = startHttpServer(handler, listen);
  } catch (error) {
    await supervisor.shutdown();
    throw error;
  }
  log.info("http listening", {
    address: server.addressText,
    pause_resume: token === null ? "disabled (no http.token)" : "enabled",
  });
  return server;
}
