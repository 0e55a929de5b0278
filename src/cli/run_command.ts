/**
 * `nsqworker run`: the daemon, and the process around it. SIGTERM and
 * SIGINT drain the daemon, and a second one exits at once with code 1 (nsqd
 * redelivers what was in flight); SIGHUP, and with `--reload-on-change` a
 * save of the config file, reloads it.
 *
 * @module
 */

import { readConfigDraft } from "../config/load.ts";
import type { Entry, LogConfig } from "../config/types.ts";
import { watchConfigFile } from "./config_watcher.ts";
import { prepare } from "../daemon/prepare.ts";
import { startDaemon } from "../daemon/start_daemon.ts";
import type { ConsumerTimings } from "../nsq/consumer.ts";
import { logger } from "../observe/log.ts";
import { moduleSource, WORKERS_DIR } from "../worker/worker_loader.ts";
import { currentChildProgram } from "../child/child_program.ts";
import { errorText } from "../error_text.ts";

/** Settings of `nsqworker run`. */
export interface RunOptions {
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
 * Runs the daemon until SIGTERM or SIGINT, then shuts it down gracefully and
 * resolves. Config and worker errors throw before anything connects.
 */
export async function runCommand(options: RunOptions): Promise<void> {
  const sources = { workers: moduleSource(options.workersDir) };
  const prepared = await prepare(await readConfigDraft(options.configPath), sources);
  checkRunSelf(prepared.config.workers);
  const log = logger("daemon");
  const stop = Promise.withResolvers<void>();
  let stopping = false;
  const onStop = (signal: Deno.Signal) => () => {
    if (stopping) {
      log.warning("second signal: exiting now", { signal });
      Deno.exit(1);
    }
    stopping = true;
    log.info("signal received: draining", { signal });
    stop.resolve();
  };
  // startDaemon sets nothing up before its first await, so the listeners
  // below are in place before any entry starts: a signal while workers'
  // setup() still runs must end the run all the same.
  const starting = startDaemon(prepared, {
    ...(options.log ? { log: options.log } : {}),
    ...(options.timings ? { timings: options.timings } : {}),
    // A child imports the same worker modules as this process, so it reads where this one does.
    childProgram: currentChildProgram(options.workersDir ?? WORKERS_DIR),
  });
  // A config that fails to load is logged and the running one kept; a valid
  // one is applied whole.
  const reload = async (reason: string) => {
    log.info("reloading the config", { reason, config: options.configPath });
    try {
      const next = await prepare(await readConfigDraft(options.configPath), sources);
      await (await starting).reload(next);
    } catch (error) {
      log.error("reload refused; the running config stays", { error: errorText(error) });
    }
  };
  const listeners = [
    ...(["SIGTERM", "SIGINT"] as const).map((signal) => [signal, onStop(signal)] as const),
    ["SIGHUP", () => void reload("SIGHUP")] as const,
  ];
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  let watcher: Deno.FsWatcher | null = null;
  try {
    const daemon = await starting;
    if (options.reloadOnChange) watcher = watchConfigFile(options.configPath, reload);
    await stop.promise;
    await daemon.shutdown();
  } finally {
    watcher?.close();
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

/**
 * An entry with `processes` starts this program again as its children:
 * without the permission to, it could never start, so the run refuses at
 * once (one line, exit 2) rather than failing each such entry.
 */
function checkRunSelf(entries: readonly Entry[]): void {
  const needing = entries.filter((entry) => entry.processes > 0);
  if (needing.length === 0) return;
  const command = Deno.execPath();
  if (Deno.permissions.querySync({ name: "run", command }).state === "granted") return;
  throw new Deno.errors.NotCapable(
    `missing permission --allow-run=${command}: ${needing[0]!.topic}/${needing[0]!.channel} ` +
      `has processes: ${needing[0]!.processes}, whose children are this program started again`,
  );
}
