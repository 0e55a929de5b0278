/**
 * The supervisor: one running entry per config entry, sharing one dedupe
 * store and one publisher. An entry that fails stays failed on its own;
 * the others run.
 *
 * @module
 */

import type { Config } from "./config/types.ts";
import type { DedupeStore } from "./dedupe/store.ts";
import { boundLogger, logger } from "./log.ts";
import type { ConsumerTimings } from "./nsq/consumer.ts";
import type { ConnectionOptions } from "./nsq/nsqjs.ts";
import { NsqPublisher } from "./publisher.ts";
import { describeError } from "./runner/outcome.ts";
import { RunningEntry } from "./running_entry.ts";
import type { LoadedWorker } from "./worker_loader.ts";

/** What the supervisor is built from. */
export interface SupervisorOptions {
  readonly config: Config;
  /** The loaded worker of each `config.workers[i]`, same order. */
  readonly workers: readonly LoadedWorker[];
  readonly store: DedupeStore;
  /** nsqd connection settings (TLS material already read). */
  readonly connection: ConnectionOptions;
  readonly timings?: Partial<ConsumerTimings>;
}

/** Whether the daemon takes messages, and if not, why. */
export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

/** Runs every entry of a config. */
export class Supervisor {
  readonly publisher: NsqPublisher;
  #options: SupervisorOptions;
  #entries: RunningEntry[];
  #log = logger("supervisor");
  #shutdown: Promise<void> | null = null;

  constructor(options: SupervisorOptions) {
    const { config, workers, store, connection } = options;
    if (workers.length !== config.workers.length) {
      throw new Error(
        `expected one loaded worker per entry (${config.workers.length}), got ${workers.length}`,
      );
    }
    this.#options = options;
    this.publisher = new NsqPublisher({
      address: config.nsq.publishNsqdTcpAddress,
      topicPrefix: config.nsq.topicPrefix,
      connection,
      log: logger("publisher"),
    });
    this.#entries = config.workers.map((entry, i) =>
      new RunningEntry({
        entry,
        worker: workers[i]!,
        store,
        publisher: this.publisher,
        nsqdAddresses: config.nsq.nsqdTcpAddresses,
        lookupdUrls: config.nsq.lookupdHttpAddresses,
        connection,
        log: boundLogger(logger("entry"), {
          topic: entry.topic,
          channel: entry.channel,
          worker: entry.worker,
        }),
        ...(options.timings ? { timings: options.timings } : {}),
      })
    );
  }

  /** The running entries, in config order. */
  get entries(): readonly RunningEntry[] {
    return this.#entries;
  }

  /** True once `shutdown()` has begun. */
  get draining(): boolean {
    return this.#shutdown !== null;
  }

  /** Starts every entry (their `setup()` in parallel); never throws. */
  async start(): Promise<void> {
    await Promise.all(this.#entries.map((entry) => entry.start()));
    const failed = this.#entries.filter((entry) => entry.state === "failed").length;
    this.#log.info("started", {
      entries: this.#entries.length,
      failed,
    });
  }

  /** Ready when not draining and every entry has at least one nsqd connection. */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.draining) reasons.push("draining: the daemon is shutting down");
    for (const entry of this.#entries) {
      const name = `${entry.entry.topic}/${entry.entry.channel}`;
      if (entry.state === "failed") reasons.push(`${name}: ${entry.failure}`);
      else if (!entry.consumer.isConnected) reasons.push(`${name}: no nsqd connection`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Drains and stops every entry (each within `shutdown_timeout`), then
   * closes the publisher and the dedupe store. Every step runs even when one
   * fails; safe to call more than once.
   */
  shutdown(): Promise<void> {
    return this.#shutdown ??= this.#stopAll();
  }

  async #stopAll(): Promise<void> {
    const timeout = this.#options.config.shutdownTimeoutMs;
    this.#log.info("shutting down", { in_flight: this.inFlight() });
    const steps: [string, () => Promise<void>][] = [
      ["entries", async () => {
        await Promise.all(this.#entries.map((entry) => entry.stop(timeout)));
      }],
      ["publisher", () => this.publisher.close()],
      ["dedupe store", () => this.#options.store.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.#log.error("shutdown step failed", { step: name, error: describeError(error) });
      }
    }
    this.#log.info("stopped");
  }

  /** Messages being handled now, over all entries. */
  inFlight(): number {
    return this.#entries.reduce((sum, entry) => sum + entry.stats.inFlight, 0);
  }
}
