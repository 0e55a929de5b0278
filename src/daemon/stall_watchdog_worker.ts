/**
 * The stall watchdog's own thread (a Web Worker; see `stall_watchdog.ts`):
 * it watches the heartbeat of the daemon's thread on the shared board and,
 * once it has stopped for `stall_timeout`, writes the fatal line to stderr
 * and kills the process with SIGKILL. Nothing softer works from here while
 * the daemon's thread is blocked: `Deno.exit()` in a worker waits for that
 * thread, and the daemon listens to SIGTERM and SIGINT on it.
 *
 * @module
 */

import type { LogConfig } from "../config/types.ts";
import { type EntryName, readBeat, readStallBoard } from "../observe/stall_board.ts";
import { stallLine } from "../observe/stall_line.ts";
import { errorText } from "../error_text.ts";
import { writeAllSync } from "../write_all_sync.ts";
import { heartbeatPeriodMs, StallDetector } from "./stall_detector.ts";

/** The watchdog's settings, from the config. */
export interface WatchdogSettings {
  readonly stallTimeoutMs: number;
  readonly format: LogConfig["format"];
  /** Whether a `pretty` line is colored. */
  readonly color: boolean;
}

/** What the daemon's thread tells the watchdog. */
export type ToWatchdog =
  | {
    readonly kind: "start";
    readonly buffer: SharedArrayBuffer;
    readonly settings: WatchdogSettings;
  }
  | { readonly kind: "settings"; readonly settings: WatchdogSettings }
  | { readonly kind: "entries"; readonly names: readonly (readonly [number, EntryName])[] };

/** What the watchdog tells the daemon's thread: it watches. */
export type FromWatchdog = { readonly kind: "ready" };

interface Watch {
  readonly buffer: SharedArrayBuffer;
  readonly detector: StallDetector;
  settings: WatchdogSettings;
  timer: ReturnType<typeof setInterval> | undefined;
}

/** The worker's global scope, as far as this module uses it. */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<ToWatchdog>) => void) | null;
  postMessage(message: FromWatchdog): void;
};

let watch: Watch | null = null;
let names: ReadonlyMap<number, EntryName> = new Map();

function look(watch: Watch): void {
  const stalledMs = watch.detector.stalledFor(readBeat(watch.buffer), performance.now());
  if (stalledMs === null) return;
  const { stallTimeoutMs, format, color } = watch.settings;
  const line = stallLine(readStallBoard(watch.buffer), names, {
    stallTimeoutMs,
    stalledMs,
    format,
    color,
    now: Date.now(),
  });
  try {
    writeAllSync(Deno.stderr, `${line}\n`);
  } catch {
    // stderr is gone: the exit status still tells.
  }
  try {
    Deno.kill(Deno.pid, "SIGKILL");
  } catch (error) {
    // Nothing else can end the process from here: say so once, and stop.
    clearInterval(watch.timer);
    try {
      writeAllSync(
        Deno.stderr,
        `nsqworker stall watchdog: SIGKILL failed (${errorText(error)}); it stops watching\n`,
      );
    } catch {
      // As above.
    }
  }
}

function schedule(watch: Watch): void {
  clearInterval(watch.timer);
  watch.timer = setInterval(() => look(watch), heartbeatPeriodMs(watch.settings.stallTimeoutMs));
}

scope.onmessage = ({ data }) => {
  switch (data.kind) {
    case "start": {
      const { buffer, settings } = data;
      watch = {
        buffer,
        settings,
        detector: new StallDetector(settings.stallTimeoutMs, performance.now()),
        timer: undefined,
      };
      schedule(watch);
      scope.postMessage({ kind: "ready" });
      return;
    }
    case "settings":
      if (watch === null) return;
      watch.settings = data.settings;
      watch.detector.stallTimeoutMs = data.settings.stallTimeoutMs;
      schedule(watch);
      return;
    case "entries":
      names = new Map(data.names);
      return;
  }
};
