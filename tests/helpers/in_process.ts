/**
 * Runs the daemon's supervisor inside the test process, with worker
 * definitions given inline (closures can count and record), a config given
 * as YAML text, and log records captured instead of printed.
 *
 * @module
 */

import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { connectionOptions } from "../../src/connection_options.ts";
import { createStore } from "../../src/dedupe/create_store.ts";
import { logger, setupLogging } from "../../src/log.ts";
import type { ConsumerTimings } from "../../src/nsq/consumer.ts";
import { Supervisor } from "../../src/supervisor.ts";
import type { WorkerDefinition } from "../../src/worker.ts";
import { workerFile } from "../../src/worker_loader.ts";

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
  const config = parseConfig(options.yaml, "test.yaml", {});
  const logs: Record<string, unknown>[] = [];
  await setupLogging({ level: "debug", format: "json" }, {
    write: (line) => logs.push(JSON.parse(line)),
  });
  const workers = config.workers.map((entry) => {
    const definition = options.workers[entry.worker];
    if (!definition) throw new Error(`test gives no worker named ${entry.worker}`);
    return {
      name: entry.worker,
      file: workerFile(entry.worker),
      definition,
      options: { ...definition.options, ...entry.options },
    };
  });
  const supervisor = new Supervisor({
    config,
    workers,
    store: await createStore(config.dedupe, logger("dedupe")),
    connection: connectionOptions(config.nsq, (path) => Deno.readFileSync(path)),
    timings: { ...FAST_TIMINGS, ...options.timings },
  });
  await supervisor.start();
  const shutdown = () => supervisor.shutdown();
  return { config, supervisor, logs, shutdown, [Symbol.asyncDispose]: shutdown };
}

/** A promise with its resolvers, for a handler a test wants to hold and release. */
export function deferred<T = void>(): PromiseWithResolvers<T> {
  return Promise.withResolvers<T>();
}

/** Parses a dead letter envelope. */
export function envelope(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes));
}
