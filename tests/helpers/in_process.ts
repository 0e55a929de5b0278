/**
 * Runs the daemon's supervisor inside the test process, with worker
 * definitions given inline (closures can count and record), a config given
 * as YAML text, and log records captured instead of printed. The config and
 * the workers go through `prepare`, the checks of `check` and `run`.
 *
 * @module
 */

import { draftConfig } from "../../src/config/load.ts";
import type { Config, LogLevel } from "../../src/config/types.ts";
import { createStore } from "../../src/dedupe/create_store.ts";
import { logger, setupLogging } from "../../src/observe/log.ts";
import type { ConsumerTimings } from "../../src/nsq/consumer.ts";
import type { ConnectionOptions } from "../../src/nsq/connection_options.ts";
import { Supervisor } from "../../src/daemon/supervisor.ts";
import { prepare } from "../../src/daemon/prepare.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { workerFile, WorkerLoadError } from "../../src/worker/worker_loader.ts";

/** A supervisor running in this process. */
export interface InProcessDaemon extends AsyncDisposable {
  readonly config: Config;
  readonly supervisor: Supervisor;
  /** Every log record so far, parsed from the JSON lines. */
  readonly logs: Record<string, unknown>[];
  /** The graceful shutdown; safe to call twice. */
  shutdown(): Promise<void>;
}

/** Options of {@linkcode startInProcess}. */
export interface StartInProcessOptions {
  /** The config file's text. */
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
}

/** Test timings: lookupd asked every 200 ms, reconnects after 100 ms. */
export const FAST_TIMINGS: Partial<ConsumerTimings> = {
  lookupdPollIntervalMs: 200,
  reconnectMinMs: 100,
  reconnectMaxMs: 500,
  rdyIdleMs: 100,
};

/** Parses `yaml`, starts a supervisor for it and resolves once its entries have started. */
export async function startInProcess(options: StartInProcessOptions): Promise<InProcessDaemon> {
  const { config, workers, connection } = await prepare(
    draftConfig(options.yaml, "test.yaml", {}),
    {
      workers: (name) => {
        const definition = options.workers[name];
        if (definition) return Promise.resolve(definition);
        return Promise.reject(
          new WorkerLoadError(`${workerFile(name)}: the test gives no such worker`),
        );
      },
    },
  );
  const logs: Record<string, unknown>[] = [];
  await setupLogging({ level: options.logLevel ?? "debug", format: "json" }, {
    write: (line) => logs.push(JSON.parse(line)),
  });
  const supervisor = new Supervisor({
    config,
    workers,
    store: await createStore(config.dedupe, logger("dedupe")),
    connection: { ...connection, ...options.connection },
    timings: { ...FAST_TIMINGS, ...options.timings },
  });
  await supervisor.start();
  const shutdown = () => supervisor.shutdown();
  return { config, supervisor, logs, shutdown, [Symbol.asyncDispose]: shutdown };
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
