/**
 * `nsqworker replay`: reads a dead letter topic through its own channel and
 * publishes each original body again. A dead letter is FIN'd only once its
 * body was published, so a crash in between publishes that body twice at
 * worst, never loses it. Everything not replayed is held until the run ends,
 * then requeued, and stays in the channel for a later run: each run sees
 * each dead letter once (see `nsqd_pass.ts`).
 *
 * @module
 */

import { formatHostPort } from "../config/address.ts";
import type { Config } from "../config/types.ts";
import { connectionOptions } from "../nsq/connection_options.ts";
import { errorText } from "../error_text.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import { NsqPublisher } from "../entry/publisher.ts";
import type { Logger } from "../worker/worker.ts";
import { channelBacklog, findNsqds, type NsqdAddress } from "./dead_letter_nsqds.ts";
import { requireNetAccess, urlHostPort } from "./net_access.ts";
import { type Answer, NsqdPass } from "./nsqd_pass.ts";
import type { ReplayOptions } from "./replay_args.ts";
import { ReplayTally } from "./replay_tally.ts";
import { unwrapDeadLetter } from "./unwrap.ts";

/** Where a run reports. */
export interface ReplayIo {
  /** Warnings (a lost connection, an nsqd error). */
  warn(text: string): void;
  /** Called with a one-line status while the run goes on; null: no progress line. */
  readonly progress: ((line: string) => void) | null;
  /** `--show`: one matching dead letter, its envelope as one line of JSON. */
  show(line: string): void;
}

/** Timings; tests shorten them. */
export interface ReplayTimings {
  /** How long a quiet channel is waited on before nsqd's stats are asked whether it is empty. */
  readonly idleMs: number;
  /** How often the progress line is refreshed. */
  readonly progressMs: number;
}

const DEFAULT_TIMINGS: ReplayTimings = { idleMs: 500, progressMs: 500 };
const utf8 = new TextDecoder();

/** The outcome of a run. */
export interface ReplayResult {
  readonly tally: ReplayTally;
  /** Dead letters the channel still holds at the end (nsqd's stats); null when unknown. */
  readonly left: number | null;
  /**
   * Why part of the run did not see every dead letter: a connection lost,
   * dead letters nsqd did not give. The run is then not a success.
   */
  readonly errors: readonly string[];
}

/** State every nsqd's pass shares. */
interface Shared {
  readonly options: ReplayOptions;
  readonly io: ReplayIo;
  readonly tally: ReplayTally;
  readonly publisher: NsqPublisher | null;
  readonly pace: Pace | null;
  readonly topicPrefix: string;
  /** Dead letters taken towards `--limit`, counted before the publish. */
  taken: number;
  /** Set when `--limit` is reached: every pass ends. */
  stopped: boolean;
  readonly passes: Set<NsqdPass>;
}

/**
 * Runs one replay with the `nsq:` settings of `config`.
 *
 * @example
 * ```ts
 * const result = await replay(config, parseReplayArgs(["--from", "pageviews.dead"]), io);
 * ```
 *
 * @throws {MissingPermissionError} when net access to an address it needs is not granted.
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
  const publishes = options.mode === "replay";
  if (publishes && nsq.publishNsqdTcpAddress === null) {
    throw new Error(
      "replay publishes through nsq.publish_nsqd_tcp_address (or the first of " +
        "nsq.nsqd_tcp_addresses), and the config has neither",
    );
  }
  // Checked before each first use: a missing permission is one line, not a lost connection.
  requireNetAccess(nsq.lookupdHttpAddresses.map(urlHostPort));
  const nsqds = await findNsqds(nsq, fromTopic, io.warn);
  requireNetAccess([
    ...nsqds.flatMap((nsqd) => [
      formatHostPort(nsqd),
      ...(nsqd.httpUrl === null ? [] : [urlHostPort(nsqd.httpUrl)]),
    ]),
    ...(publishes && nsq.publishNsqdTcpAddress ? [formatHostPort(nsq.publishNsqdTcpAddress)] : []),
  ]);
  const log = warningsTo(io);
  const shared: Shared = {
    options,
    io,
    tally: new ReplayTally(),
    publisher: publishes
      ? new NsqPublisher({
        address: nsq.publishNsqdTcpAddress,
        topicPrefix: nsq.topicPrefix,
        connection,
        log,
      })
      : null,
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
      const pass = new NsqdPass(
        nsqd,
        fromTopic,
        options.channel,
        connection,
        (message) => handle(shared, message),
        t.idleMs,
      );
      shared.passes.add(pass);
      return pass.run().then(({ unseen }) => {
        if (unseen !== null && !shared.stopped) {
          errors.push(`nsqd ${formatHostPort(nsqd)}: ${unseen}`);
        }
      }, (error: Error) => {
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

/** Decides one dead letter; only a published body gets "finish". */
async function handle(shared: Shared, message: NsqMessage): Promise<Answer> {
  const { options, tally, io } = shared;
  // Given after --limit was reached elsewhere: left as it is, not counted.
  if (shared.stopped) return "hold";
  const found = unwrapDeadLetter(message.body);
  if (found.kind === "foreign") {
    tally.foreign++;
    return "hold";
  }
  if (found.kind === "truncated") {
    // Counted whether it matches or not; only shown, never replayed.
    tally.truncated++;
    if (options.mode !== "show") return "hold";
  }
  if (!matches(options, found)) {
    tally.skipped++;
    return "hold";
  }
  if (limitReached(shared)) {
    stopAll(shared);
    return "hold";
  }
  shared.taken++;
  if (limitReached(shared)) stopAll(shared);
  if (options.mode === "show") {
    tally.shown++;
    // One line whatever the envelope's own layout.
    io.show(JSON.stringify(JSON.parse(utf8.decode(message.body))));
    return "hold";
  }
  if (found.kind !== "dead_letter") return "hold";
  tally.addMatching(found.reason, found.worker, found.error);
  if (shared.publisher === null) return "hold";
  await shared.pace?.wait();
  // The envelope names the topic on nsqd, `topic_prefix` already on it; `--to` is
  // a topic as the config names them, and gets the prefix as they do.
  const topic = options.to === null ? found.topic : shared.topicPrefix + options.to;
  try {
    await shared.publisher.publishRaw(topic, found.body);
  } catch (error) {
    tally.addFailure(errorText(error));
    return "hold";
  }
  tally.replayed++;
  return "finish";
}

function limitReached(shared: Shared): boolean {
  return shared.options.limit !== null && shared.taken >= shared.options.limit;
}

/** `--limit` is reached: every pass ends, and what it holds goes back. */
function stopAll(shared: Shared): void {
  shared.stopped = true;
  for (const pass of shared.passes) void pass.end();
}

function matches(
  options: ReplayOptions,
  found: { reason: string; worker: string; error: string },
): boolean {
  return (options.reasons.length === 0 || options.reasons.includes(found.reason)) &&
    (options.workers.length === 0 || options.workers.includes(found.worker)) &&
    (options.match === null || found.error.includes(options.match));
}
