/**
 * The supervisor: one running entry per config entry, sharing one dedupe
 * store and one publisher. An entry that fails stays failed on its own;
 * the others run.
 *
 * @module
 */

import type { Config, Entry } from "../config/types.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import { boundLogger, logger } from "../observe/log.ts";
import type { ConsumerTimings } from "../nsq/consumer.ts";
import type { ConnectionOptions } from "../nsq/connection_options.ts";
import { NsqPublisher } from "../entry/publisher.ts";
import { entryKey, planReload, type ReloadPlan } from "./reload_plan.ts";
import { runShutdownSteps } from "./shutdown_steps.ts";
import { CurrentPublisher, type EntryPublisher } from "../context/entry_context.ts";
import { RunningEntry } from "../entry/running_entry.ts";
import { StallBoard } from "../observe/stall_board.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import { withTimeout } from "../with_timeout.ts";
import type { ChildProgram } from "../child/child_program.ts";

/** What the supervisor is built from. */
export interface SupervisorOptions {
  readonly config: Config;
  /** The loaded worker of each `config.workers[i]`, same order. */
  readonly workers: readonly LoadedWorker[];
  readonly store: DedupeStore;
  /** nsqd connection settings (TLS material already read). */
  readonly connection: ConnectionOptions;
  readonly timings?: Partial<ConsumerTimings>;
  /** How entries with `processes` start their children (default: this program's command line). */
  readonly childProgram?: ChildProgram;
  /** Where entries tell the stall watchdog what they run; by default one no watchdog reads. */
  readonly board?: StallBoard;
}

/** Whether the daemon takes messages, and if not, why. */
export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

/** Runs every entry of a config, and reconciles them with a new one on reload. */
export class Supervisor {
  #options: SupervisorOptions;
  #config: Config;
  #publisher: NsqPublisher;
  /** Entries by `entryKey`, in config order. */
  #entries = new Map<string, RunningEntry>();
  /** Entries a reload is stopping (removed, or the old run of a changed one). */
  #retiring = new Set<RunningEntry>();
  #log = logger("supervisor");
  #shutdown: Promise<void> | null = null;
  #reloading: Promise<unknown> = Promise.resolve();
  /** Entries reach the current publisher through this, so a reload can replace it. */
  #entryPublisher: EntryPublisher = new CurrentPublisher(() => this.#publisher);
  readonly #board: StallBoard;

  constructor(options: SupervisorOptions) {
    const { config, workers } = options;
    checkWorkers(config, workers);
    this.#options = options;
    this.#config = config;
    this.#board = options.board ?? new StallBoard();
    this.#publisher = this.#createPublisher(config);
    config.workers.forEach((entry, i) => {
      this.#entries.set(entryKey(entry), this.#createEntry(entry, workers[i]!));
    });
  }

  /** The config in force (the last one applied by `reload`). */
  get config(): Config {
    return this.#config;
  }

  #createPublisher(config: Config): NsqPublisher {
    return new NsqPublisher({
      address: config.nsq.publishNsqdTcpAddress,
      topicPrefix: config.nsq.topicPrefix,
      connection: this.#options.connection,
      log: logger("publisher"),
    });
  }

  #createEntry(entry: Entry, worker: LoadedWorker): RunningEntry {
    const config = this.#config;
    return new RunningEntry({
      entry,
      worker,
      store: this.#options.store,
      publisher: this.#entryPublisher,
      nsqdAddresses: config.nsq.nsqdTcpAddresses,
      lookupdUrls: config.nsq.lookupdHttpAddresses,
      connection: this.#options.connection,
      log: boundLogger(logger("entry"), {
        topic: entry.topic,
        channel: entry.channel,
        worker: entry.worker,
      }),
      timings: {
        lookupdPollIntervalMs: config.nsq.lookupdPollIntervalMs,
        ...this.#options.timings,
      },
      ...(this.#options.childProgram ? { childProgram: this.#options.childProgram } : {}),
      board: this.#board,
    });
  }

  /**
   * Applies a new config: removed entries are drained and stopped, new ones
   * started, changed ones restarted; untouched ones keep consuming. Settings
   * that only apply at start (`dedupe`, `http`) are reported in
   * `needsRestart` and left as they were. `connection` carries the new nsqd
   * connection settings (TLS material read again). Reloads run one at a time.
   */
  reload(
    config: Config,
    workers: readonly LoadedWorker[],
    connection: SupervisorOptions["connection"] = this.#options.connection,
  ): Promise<ReloadPlan> {
    checkWorkers(config, workers);
    const next = this.#reloading.then(() => this.#apply(config, workers, connection));
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #apply(
    config: Config,
    workers: readonly LoadedWorker[],
    connection: SupervisorOptions["connection"],
  ): Promise<ReloadPlan> {
    if (this.draining) throw new Error("cannot reload: the daemon is shutting down");
    const plan = planReload(this.#config, config);
    const timeout = config.shutdownTimeoutMs;
    // Entries stay listed (in /stats, on the page) while they drain, so an
    // entry being restarted never vanishes from view; they only stop counting
    // toward readiness, as they are on their way out.
    const retiring = [...plan.removed, ...plan.changed].map((entry) =>
      this.#entries.get(entryKey(entry))!
    );
    for (const running of retiring) this.#retiring.add(running);
    await Promise.all(retiring.map((running) => running.stop(timeout)));
    const oldPublisher = plan.publisherChanged ? this.#publisher : null;
    this.#config = config;
    this.#options = { ...this.#options, config, workers, connection };
    if (oldPublisher) this.#publisher = this.#createPublisher(config);
    const fresh = new Set([...plan.added, ...plan.changed].map(entryKey));
    // In one step, in config order: a changed entry's new run takes the old
    // one's place, a removed one leaves, an added one appears.
    this.#entries = new Map(config.workers.map((entry, i) => {
      const key = entryKey(entry);
      const running = fresh.has(key)
        ? this.#createEntry(entry, workers[i]!)
        : this.#entries.get(key)!;
      return [key, running];
    }));
    for (const running of retiring) this.#retiring.delete(running);
    await Promise.all([...fresh].map((key) => this.#entries.get(key)!.start()));
    await oldPublisher?.close();
    this.#log.info("reloaded", {
      added: plan.added.map(entryKey),
      removed: plan.removed.map(entryKey),
      changed: plan.changed.map(entryKey),
      unchanged: plan.unchanged.length,
      needs_restart: plan.needsRestart,
    });
    if (plan.needsRestart.length > 0) {
      this.#log.warning("some changes apply only after a restart", {
        sections: plan.needsRestart,
      });
    }
    return plan;
  }

  /** The running entries, in config order. */
  get entries(): readonly RunningEntry[] {
    return [...this.#entries.values()];
  }

  /** True once `shutdown()` has begun. */
  get draining(): boolean {
    return this.#shutdown !== null;
  }

  /** Starts every entry (their `setup()` in parallel); never throws. */
  async start(): Promise<void> {
    const entries = this.entries;
    await Promise.all(entries.map((entry) => entry.start()));
    const failed = entries.filter((entry) => entry.state === "failed").length;
    this.#log.info("started", {
      entries: entries.length,
      failed,
    });
  }

  /**
   * Ready when not draining and every entry is subscribed on each nsqd that
   * discovery lists (docs/http.md).
   */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.draining) reasons.push("draining: the daemon is shutting down");
    for (const entry of this.#entries.values()) {
      if (this.#retiring.has(entry)) continue;
      const name = `${entry.entry.topic}/${entry.entry.channel}`;
      if (entry.state === "failed") reasons.push(`${name}: ${entry.failure}`);
      else {
        const reason = entry.consumer.notReadyReason();
        if (reason !== null) reasons.push(`${name}: ${reason}`);
      }
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
    const timeout = this.#config.shutdownTimeoutMs;
    this.#log.info("shutting down", { in_flight: this.inFlight() });
    await runShutdownSteps([
      // A reload whose new entries hang in setup() must not hold the
      // shutdown: its entries are in the map already and are stopped below.
      ["pending reload", async () => {
        await withTimeout(this.#reloading, timeout);
      }],
      ["entries", async () => {
        await Promise.all(this.entries.map((entry) => entry.stop(timeout)));
      }],
      ["publisher", () => this.#publisher.close()],
      ["dedupe store", () => this.#options.store.close()],
    ], this.#log);
    this.#log.info("stopped");
  }

  /** Messages being handled now, over all entries. */
  inFlight(): number {
    return this.entries.reduce((sum, entry) => sum + entry.stats.inFlight, 0);
  }
}

function checkWorkers(config: Config, workers: readonly LoadedWorker[]): void {
  if (workers.length !== config.workers.length) {
    throw new Error(
      `expected one loaded worker per entry (${config.workers.length}), got ${workers.length}`,
    );
  }
}
