/**
 * What the HTTP handler needs, read from (and done to) a running supervisor.
 *
 * @module
 */

import type { Supervisor } from "../supervisor.ts";
import type { Logger } from "../../worker/worker.ts";
import type { HandlerDeps } from "./handler_deps.ts";
import type { PageDeps } from "./page_deps.ts";
import { findEntry, snapshotSupervisor } from "./snapshot.ts";
import { setEntryPaused } from "../set_entry_paused.ts";
import { setChannelPaused } from "../channel_pause.ts";
import { topicDepth } from "../dead_letter_depth.ts";
import type { HistorySampler } from "../history_sampler.ts";
import { replayDeadLetters } from "../replay_dead_letters.ts";

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
  /** The entries' history; with it (and `closing`) the page is served. */
  readonly history?: HistorySampler;
  /** Aborted when the daemon stops: the page's live streams end. */
  readonly closing?: AbortSignal;
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
  const { history, closing } = options;
  return {
    readiness: () => supervisor.readiness(),
    snapshot: () => snapshotSupervisor(supervisor, info),
    pause: (topic, channel) => control(topic, channel, true),
    resume: (topic, channel) => control(topic, channel, false),
    token: options.token,
    log,
    ...(history && closing ? { page: pageDeps(supervisor, history, closing, log) } : {}),
  };
}

/** The page's reads and actions on a supervisor. */
function pageDeps(
  supervisor: Supervisor,
  history: HistorySampler,
  closing: AbortSignal,
  log: Logger,
): PageDeps {
  return {
    sampleMs: history.intervalMs,
    historyTaken: () => history.taken,
    history: (topic, channel) => history.history(topic, channel),
    deadLetters(topic, channel) {
      const running = findEntry(supervisor, topic, channel);
      if (running === null) return null;
      return {
        topic: running.entry.deadLetterTopic,
        written: running.deadLetters.written,
        records: () => running.deadLetters.records(),
      };
    },
    topicDepth: (topic) => topicDepth(supervisor.config.nsq, topic),
    async pauseChannel(topic, channel, paused) {
      const running = findEntry(supervisor, topic, channel);
      if (running === null) return null;
      const { nsqTopic } = running.entry;
      const answers = await setChannelPaused(supervisor.config.nsq, nsqTopic, channel, paused);
      log.info(paused ? "channel paused on nsqd over HTTP" : "channel unpaused on nsqd over HTTP", {
        topic,
        channel,
        nsqds: answers.map((a) => `${a.nsqd}: ${a.result}${a.error ? ` (${a.error})` : ""}`),
      });
      return answers;
    },
    replay: (filter) => replayDeadLetters(supervisor.config, filter, log),
    closing,
  };
}
