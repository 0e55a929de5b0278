/**
 * `nsqworker replay`: reads a dead letter topic through its own channel and
 * publishes each original body again. A dead letter is FIN'd only once its
 * body was published, so a crash in between publishes that body twice at
 * worst, never loses it. Everything not replayed is requeued at once and
 * stays in the channel for a later run.
 *
 * The run reads with RDY 1 per nsqd, so messages come one at a time and a
 * requeued one goes to the back of the channel's queue: meeting an id a
 * second time means every dead letter on that nsqd was seen. A channel that
 * stays quiet for a moment with nothing left in nsqd's stats is done too.
 *
 * @module
 */

import { formatHostPort } from "../config/address.ts";
import type { Config } from "../config/types.ts";
import { connectionOptions } from "../nsq/connection_options.ts";
import { asError, errorText } from "../error_text.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import { ReaderConnection } from "../nsq/reader_connection.ts";
import { NsqPublisher } from "../entry/publisher.ts";
import type { Logger } from "../worker/worker.ts";
import { channelBacklog, findNsqds, type NsqdAddress } from "./dead_letter_nsqds.ts";
import type { ReplayOptions } from "./replay_args.ts";
import { ReplayTally } from "./replay_tally.ts";
import { unwrapDeadLetter } from "./unwrap.ts";

/** Where a run reports. */
export interface ReplayIo {
  /** Warnings (a lost connection, an nsqd error). */
  warn(text: string): void;
  /** Called with a one-line status while the run goes on; null: no progress line. */
  readonly progress: ((line: string) => void) | null;
}

/** Timings; tests shorten them. */
export interface ReplayTimings {
  /** How long a quiet channel is waited on before nsqd's stats are asked whether it is empty. */
  readonly idleMs: number;
  /** How often the progress line is refreshed. */
  readonly progressMs: number;
}

const DEFAULT_TIMINGS: ReplayTimings = { idleMs: 500, progressMs: 500 };
/** Quiet periods during which nsqd still reports messages (another consumer may hold them). */
const MAX_QUIET_ROUNDS = 4;

/** The outcome of a run. */
export interface ReplayResult {
  readonly tally: ReplayTally;
  /** Dead letters the channel still holds at the end (nsqd's stats); null when unknown. */
  readonly left: number | null;
  /** Connection problems that ended a part of the run early. */
  readonly errors: readonly string[];
}

/** State every nsqd's pass shares. */
interface Shared {
  readonly options: ReplayOptions;
  readonly tally: ReplayTally;
  readonly seen: Set<string>;
  readonly publisher: NsqPublisher | null;
  readonly pace: Pace | null;
  readonly topicPrefix: string;
  /** Replays taken towards `--limit`, counted before the publish. */
  taken: number;
  /** Set when `--limit` is reached: every pass ends. */
  stopped: boolean;
  readonly passes: Set<Pass>;
}

/**
 * Runs one replay with the `nsq:` settings of `config`.
 *
 * @example
 * ```ts
 * const result = await replay(config, parseReplayArgs(["--from", "pageviews.dead"]), io);
 * ```
 */
export async function replay(
  config: Config,
  options: ReplayOptions,
  io: ReplayIo,
  timings: Partial<ReplayTimings> = {},
): Promise<ReplayResult> {
  const t = { ...DEFAULT_TIMINGS, ...timings };
  const nsq = config.nsq;
  const connection = connectionOptions(nsq, (path) => Deno.readFileSync(path));
  const fromTopic = nsq.topicPrefix + options.from;
  if (!options.dryRun && nsq.publishNsqdTcpAddress === null) {
    throw new Error(
      "replay publishes through nsq.publish_nsqd_tcp_address (or the first of " +
        "nsq.nsqd_tcp_addresses), and the config has neither",
    );
  }
  const nsqds = await findNsqds(nsq, fromTopic, io.warn);
  const log = warningsTo(io);
  const shared: Shared = {
    options,
    tally: new ReplayTally(),
    seen: new Set(),
    publisher: options.dryRun ? null : new NsqPublisher({
      address: nsq.publishNsqdTcpAddress,
      topicPrefix: nsq.topicPrefix,
      connection,
      log,
    }),
    pace: options.rate === null ? null : new Pace(options.rate.perMs / options.rate.count),
    topicPrefix: nsq.topicPrefix,
    taken: 0,
    stopped: false,
    passes: new Set(),
  };
  const backlog = () => totalBacklog(nsqds, fromTopic, options.channel);
  let progress: ReturnType<typeof setInterval> | undefined;
  if (io.progress !== null) {
    const show = io.progress;
    let busy = false;
    progress = setInterval(async () => {
      if (busy) return;
      busy = true;
      const remaining = await backlog();
      busy = false;
      show(
        `replayed ${shared.tally.replayed}, failed ${shared.tally.failed}, ` +
          `remaining in ${options.from}/${options.channel}: ${remaining ?? "?"}`,
      );
    }, t.progressMs);
  }
  const errors: string[] = [];
  try {
    const passes = nsqds.map((nsqd) => {
      const pass = new Pass(nsqd, fromTopic, connection, shared, t.idleMs);
      shared.passes.add(pass);
      return pass.run().catch((error: Error) => {
        errors.push(`nsqd ${formatHostPort(nsqd)}: ${error.message}`);
      });
    });
    await Promise.all(passes);
  } finally {
    clearInterval(progress);
    await shared.publisher?.close();
  }
  return { tally: shared.tally, left: await backlog(), errors };
}

/** Dead letters held by the channel over every nsqd; null when one did not answer. */
async function totalBacklog(
  nsqds: readonly NsqdAddress[],
  topic: string,
  channel: string,
): Promise<number | null> {
  const each = await Promise.all(nsqds.map((nsqd) => channelBacklog(nsqd, topic, channel)));
  let total = 0;
  for (const b of each) {
    if (b === null) return null;
    total += b.depth + b.inFlight + b.deferred;
  }
  return total;
}

function warningsTo(io: ReplayIo): Logger {
  const warn = (message: string, properties?: Record<string, unknown>) =>
    io.warn(`${message}${properties ? ` ${JSON.stringify(properties)}` : ""}`);
  return { debug: () => {}, info: () => {}, warning: warn, error: warn };
}

/** Spaces publishes `intervalMs` apart, over every nsqd. */
class Pace {
  #next = 0;
  constructor(readonly intervalMs: number) {}

  async wait(): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.#next);
    this.#next = at + this.intervalMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}

/** After a message: read on, end this nsqd's pass, or end every pass (`--limit` reached). */
type Next = "more" | "end" | "stop";

/** The reading of one nsqd's channel, one message at a time. */
class Pass {
  #connection: ReaderConnection;
  #shared: Shared;
  #idleMs: number;
  #quietRounds = 0;
  #idle: ReturnType<typeof setTimeout> | undefined;
  #ending: Promise<void> | null = null;
  /** The message being handled; the next may arrive before its handling has settled. */
  #current: Promise<Next> | null = null;
  #done = Promise.withResolvers<void>();
  #nsqd: NsqdAddress;
  #topic: string;

  constructor(
    nsqd: NsqdAddress,
    topic: string,
    connection: ReturnType<typeof connectionOptions>,
    shared: Shared,
    idleMs: number,
  ) {
    this.#nsqd = nsqd;
    this.#topic = topic;
    this.#shared = shared;
    this.#idleMs = idleMs;
    this.#connection = new ReaderConnection(
      nsqd.host,
      nsqd.port,
      topic,
      shared.options.channel,
      connection,
      {
        ready: () => {
          this.#connection.setRdy(1);
          this.#armIdle();
        },
        message: (message) => this.#receive(message),
        responded: () => {},
        closed: (error) => {
          clearTimeout(this.#idle);
          if (this.#ending === null) {
            this.#done.reject(new Error(`connection closed${error ? `: ${error.message}` : ""}`));
          }
        },
        error: () => {/* a fatal one is followed by closed, which reports it */},
      },
    );
  }

  /** Reads until every dead letter was seen; rejects when the connection is lost. */
  run(): Promise<void> {
    this.#connection.connect();
    return this.#done.promise;
  }

  /**
   * Stops reading: what nsqd sends meanwhile goes back at once, and the
   * message being handled gets its FIN or REQ before the connection closes.
   */
  end(): Promise<void> {
    clearTimeout(this.#idle);
    this.#ending ??= (async () => {
      await this.#connection.drain();
      await this.#current?.catch(() => {});
      await this.#connection.close();
      this.#done.resolve();
    })();
    return this.#ending;
  }

  #receive(message: NsqMessage): void {
    clearTimeout(this.#idle);
    const handling = this.#handle(message);
    this.#current = handling;
    handling.then((next) => {
      if (this.#current === handling) this.#current = null;
      if (next === "more") {
        this.#armIdle();
      } else if (next === "end") {
        void this.end();
      } else {
        this.#shared.stopped = true;
        for (const pass of this.#shared.passes) void pass.end();
      }
    }, (error) => this.#fail(error));
  }

  #fail(error: unknown): void {
    this.#done.reject(asError(error));
    this.#connection.destroy();
  }

  #armIdle(): void {
    if (this.#ending !== null || this.#current !== null || !this.#connection.isReady) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => this.#quiet(), this.#idleMs);
  }

  /** Nothing came for a while: done, unless nsqd says messages are waiting. */
  async #quiet(): Promise<void> {
    const backlog = await channelBacklog(this.#nsqd, this.#topic, this.#shared.options.channel);
    if (this.#current !== null) return; // a message came meanwhile; it re-arms the wait
    const waiting = backlog === null ? 0 : backlog.depth;
    if (waiting > 0 && ++this.#quietRounds < MAX_QUIET_ROUNDS) this.#armIdle();
    else await this.end();
  }

  async #handle(message: NsqMessage): Promise<Next> {
    const shared = this.#shared;
    const { options, tally } = shared;
    if (shared.stopped || shared.seen.has(message.id)) {
      message.requeue(0);
      return "end";
    }
    shared.seen.add(message.id);
    const found = unwrapDeadLetter(message.body);
    if (found.kind !== "dead_letter") {
      if (found.kind === "foreign") tally.foreign++;
      else tally.truncated++;
      message.requeue(0);
      return "more";
    }
    if (!matches(options, found)) {
      tally.skipped++;
      message.requeue(0);
      return "more";
    }
    if (limitReached(shared)) {
      // Seen, but past the limit: left for a later run, and nothing more to do.
      shared.seen.delete(message.id);
      message.requeue(0);
      return "stop";
    }
    shared.taken++;
    tally.addMatching(found.reason, found.worker, found.error);
    if (shared.publisher === null) {
      message.requeue(0);
      return limitReached(shared) ? "stop" : "more";
    }
    await shared.pace?.wait();
    const topic = shared.topicPrefix + (options.to ?? found.topic);
    try {
      await shared.publisher.publishRaw(topic, found.body);
    } catch (error) {
      tally.addFailure(errorText(error));
      message.requeue(0);
      return "more";
    }
    message.finish();
    tally.replayed++;
    return limitReached(shared) ? "stop" : "more";
  }
}

function limitReached(shared: Shared): boolean {
  return shared.options.limit !== null && shared.taken >= shared.options.limit;
}

function matches(
  options: ReplayOptions,
  found: { reason: string; worker: string; error: string },
): boolean {
  return (options.reasons.length === 0 || options.reasons.includes(found.reason)) &&
    (options.workers.length === 0 || options.workers.includes(found.worker)) &&
    (options.match === null || found.error.includes(options.match));
}
