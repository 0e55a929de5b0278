/**
 * Runs the daemon inside the test process, started by the daemon's own
 * composition root (`startDaemon`), with worker definitions given inline
 * (closures can count and record), a config given as YAML text, and log
 * records captured instead of printed. The config and the workers go through
 * `prepare`, the checks of `check` and `run`.
 *
 * @module
 */

import { draftConfig } from "../../src/config/load.ts";
import type { LogLevel } from "../../src/config/types.ts";
import type { ConsumerTimings } from "../../src/nsq/consumer.ts";
import type { ConnectionOptions } from "../../src/nsq/connection_options.ts";
import { prepare, type Prepared } from "../../src/daemon/prepare.ts";
import { type Daemon, startDaemon } from "../../src/daemon/start_daemon.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { workerFile, WorkerLoadError } from "../../src/worker/worker_loader.ts";

/** A daemon running in this process, and what it logged. */
export interface InProcessDaemon extends Daemon {
  /** Every log record so far, parsed from the JSON lines. */
  readonly logs: Record<string, unknown>[];
}

/** Options of {@linkcode startInProcess}. */
export interface StartInProcessOptions {
  /**
   * The config file's text. Without an `http.listen` of its own, the daemon
   * serves no HTTP (rather than the default port, which tests running side
   * by side would fight over).
   */
  readonly yaml: string;
  /** The worker definition of each `worker:` name the config uses. */
  readonly workers: Record<string, WorkerDefinition>;
  /** Faster discovery and reconnection for tests. */
  readonly timings?: Partial<ConsumerTimings>;
  /**
   * The lowest level logged. Default "debug"; a soak of millions of messages
   * wants "info", or one "finished" record per message piles up in `logs`.
   */
  readonly logLevel?: LogLevel;
  /** Over the connection settings of the config, e.g. shorter heartbeats. */
  readonly connection?: Partial<ConnectionOptions>;
  /**
   * Whether to resolve only once every worker's `setup()` has run (default
   * true); false for a test that acts while a setup() still runs.
   */
  readonly waitForStart?: boolean;
  /** See `StartDaemonOptions.renderMaxAgeMs`. */
  readonly renderMaxAgeMs?: number;
  /** See `StartDaemonOptions.historySampleMs`. */
  readonly historySampleMs?: number;
}

/** Test timings: lookupd asked every 200 ms, reconnects after 100 ms. */
export const FAST_TIMINGS: Partial<ConsumerTimings> = {
  lookupdPollIntervalMs: 200,
  reconnectMinMs: 100,
  reconnectMaxMs: 500,
  rdyIdleMs: 100,
};

/** Parses `yaml`, starts a daemon for it and resolves once its entries have started. */
export async function startInProcess(options: StartInProcessOptions): Promise<InProcessDaemon> {
  const prepared = await prepareInProcess(options.yaml, options.workers);
  const logs: Record<string, unknown>[] = [];
  const daemon = await startDaemon({
    ...prepared,
    connection: { ...prepared.connection, ...options.connection },
  }, {
    log: { level: options.logLevel ?? "debug", format: "json" },
    writeLog: (line) => logs.push(JSON.parse(line)),
    timings: { ...FAST_TIMINGS, ...options.timings },
    ...(options.renderMaxAgeMs === undefined ? {} : { renderMaxAgeMs: options.renderMaxAgeMs }),
    ...(options.historySampleMs === undefined ? {} : { historySampleMs: options.historySampleMs }),
  });
  if (options.waitForStart ?? true) await daemon.started;
  return Object.assign(daemon, { logs });
}

/**
 * `yaml` checked and loaded as `run` does a config file, with the workers
 * given inline; without an `http.listen` of its own it serves no HTTP (see
 * {@linkcode StartInProcessOptions.yaml}). For `startDaemon` and a daemon's
 * `reload`.
 */
export async function prepareInProcess(
  yaml: string,
  workers: Record<string, WorkerDefinition>,
): Promise<Prepared> {
  const draft = draftConfig(yaml, "test.yaml", {});
  const prepared = await prepare(draft, {
    workers: (name) => {
      const definition = workers[name];
      if (definition) return Promise.resolve(definition);
      return Promise.reject(
        new WorkerLoadError(`${workerFile(name)}: the test gives no such worker`),
      );
    },
  });
  if ("http.listen" in draft.keys) return prepared;
  const { config } = prepared;
  return { ...prepared, config: { ...config, http: { ...config.http, listen: null } } };
}

/**
 * The config of one entry on one nsqd (consumed and published to there, no
 * HTTP listener), that consumes `topic` on channel `work` with the worker
 * `test/worker`; `settings` are more keys of the entry, as YAML flow text.
 */
export function oneEntryYaml(tcpAddress: string, topic: string, settings = ""): string {
  return `
nsq:
  nsqd_tcp_addresses: [${tcpAddress}]
  publish_nsqd_tcp_address: ${tcpAddress}
http: { listen: null }
workers:
  - { topic: ${topic}, channel: work, worker: test/worker${settings ? `, ${settings}` : ""} }
`;
}

/** A promise with its resolvers, for a handler a test wants to hold and release. */
export function deferred<T = void>(): PromiseWithResolvers<T> {
  return Promise.withResolvers<T>();
}

/** Parses a dead letter envelope. */
export function envelope(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes));
}
