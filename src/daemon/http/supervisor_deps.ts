/**
 * What the HTTP handler needs, read from (and done to) a running supervisor.
 *
 * @module
 */

import type { Supervisor } from "../supervisor.ts";
import type { Logger } from "../../worker/worker.ts";
import type { HandlerDeps } from "./handler.ts";
import { snapshotSupervisor } from "./snapshot.ts";
import { setEntryPaused } from "../set_entry_paused.ts";

/** What {@linkcode supervisorDeps} needs besides the supervisor. */
export interface SupervisorDepsOptions {
  readonly version: string;
  /** When the daemon started, in `now()`'s clock. */
  readonly startedAt: number;
  /** `http.token`; null disables pause and resume. */
  readonly token: string | null;
  /** Pause and resume are logged here, and routes that throw. */
  readonly log: Logger;
  /** Defaults to `Date.now`. */
  readonly now?: () => number;
}

/**
 * The handler's dependencies for a supervisor.
 *
 * @example
 * ```ts
 * import { createHandler } from "./handler.ts";
 * import { supervisorDeps } from "./supervisor_deps.ts";
 * import { logger } from "../../observe/log.ts";
 * import type { Supervisor } from "../supervisor.ts";
 *
 * declare const supervisor: Supervisor;
 * const handler = createHandler(
 *   supervisorDeps(supervisor, {
 *     version: "0.1.0",
 *     startedAt: Date.now(),
 *     token: null,
 *     log: logger("http"),
 *   }),
 * );
 * ```
 */
export function supervisorDeps(
  supervisor: Supervisor,
  options: SupervisorDepsOptions,
): HandlerDeps {
  const { log } = options;
  const info = {
    version: options.version,
    startedAt: options.startedAt,
    ...(options.now ? { now: options.now } : {}),
  };
  const control = (topic: string, channel: string, pause: boolean) => {
    const entry = setEntryPaused(supervisor, topic, channel, pause);
    if (entry === null) return null;
    log.info(pause ? "entry paused over HTTP" : "entry resumed over HTTP", {
      topic,
      channel,
      worker: entry.worker,
    });
    return entry;
  };
  return {
    readiness: () => supervisor.readiness(),
    snapshot: () => snapshotSupervisor(supervisor, info),
    pause: (topic, channel) => control(topic, channel, true),
    resume: (topic, channel) => control(topic, channel, false),
    token: options.token,
    log,
  };
}
