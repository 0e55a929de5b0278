/**
 * The stall watchdog, always on: a Web Worker that ends the process when
 * the daemon's thread has not turned for `stall_timeout` (a handler stuck
 * in a synchronous loop holds every connection, heartbeat and TOUCH of the
 * daemon with it). The daemon's thread beats the shared board while it
 * turns; the worker (`stall_watchdog_worker.ts`) writes the fatal line and
 * kills the process with SIGKILL, for its service manager to restart it.
 *
 * @module
 */

import type { StallBoard } from "../observe/stall_board.ts";
import type { Logger } from "../worker/worker.ts";
import { heartbeatPeriodMs } from "./stall_detector.ts";
import type { FromWatchdog, ToWatchdog, WatchdogSettings } from "./stall_watchdog_worker.ts";

export type { WatchdogSettings };

/** A running watchdog. */
export interface StallWatchdog {
  /** Applies new settings (a reload). */
  configure(settings: WatchdogSettings): void;
  /** Stops the heartbeat and the watchdog's thread; safe to call more than once. */
  stop(): void;
}

/** The worker's module; `deno compile` embeds it (`--include`, see tools/compile.ts). */
export const WATCHDOG_MODULE: URL = new URL("./stall_watchdog_worker.ts", import.meta.url);

/**
 * Starts the watchdog on `board` and the heartbeat that feeds it; resolves
 * once the watchdog watches. A worker that cannot start (its module cannot
 * be read) rejects; one that fails later is logged on `log`, and the daemon
 * goes on without it.
 *
 * @example
 * ```ts ignore
 * import { StallBoard } from "../observe/stall_board.ts";
 * import { logger } from "../observe/log.ts";
 * import { startStallWatchdog } from "./stall_watchdog.ts";
 *
 * const board = new StallBoard();
 * const watchdog = await startStallWatchdog(board, {
 *   stallTimeoutMs: 30_000,
 *   format: "json",
 *   color: false,
 * }, logger("watchdog"));
 * watchdog.stop();
 * ```
 */
export async function startStallWatchdog(
  board: StallBoard,
  settings: WatchdogSettings,
  log: Logger,
): Promise<StallWatchdog> {
  const worker = new Worker(WATCHDOG_MODULE, { type: "module", name: "nsqworker stall watchdog" });
  const send = (message: ToWatchdog) => worker.postMessage(message);
  const ready = Promise.withResolvers<void>();
  let started = false;
  let stopped = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(heartbeat);
    board.onEntries = null;
    worker.terminate();
  };
  worker.onmessage = ({ data }: MessageEvent<FromWatchdog>) => {
    if (data.kind !== "ready") return;
    started = true;
    ready.resolve();
  };
  worker.onerror = (event) => {
    // Handled here: unhandled, a worker's error ends the daemon.
    event.preventDefault();
    stop();
    if (!started) {
      ready.reject(new Error(`the stall watchdog could not start: ${event.message}`));
    } else {
      log.error("the stall watchdog failed; the daemon goes on without it", {
        error: event.message,
      });
    }
  };
  // Entries register in bursts (start, reload): their names go over once per burst.
  let namesDue = false;
  const sendNames = () => {
    if (namesDue) return;
    namesDue = true;
    queueMicrotask(() => {
      namesDue = false;
      if (!stopped) send({ kind: "entries", names: [...board.names()] });
    });
  };
  const beat = (stallTimeoutMs: number) => {
    clearInterval(heartbeat);
    heartbeat = setInterval(() => board.beat(), heartbeatPeriodMs(stallTimeoutMs));
  };
  send({ kind: "start", buffer: board.buffer, settings });
  sendNames();
  board.onEntries = sendNames;
  board.beat();
  beat(settings.stallTimeoutMs);
  try {
    await ready.promise;
  } catch (error) {
    stop();
    throw error;
  }
  return {
    configure(next) {
      if (stopped) return;
      send({ kind: "settings", settings: next });
      beat(next.stallTimeoutMs);
    },
    stop,
  };
}
