/**
 * The running NSQ processes of one test, as `startNsq` returns them,
 * with what tests do to nsqd: publish, create topics and channels, read stats
 * and read a topic back.
 *
 * @module
 */
import { consume } from "./consume.ts";
import * as nsqdHttp from "./nsqd_http.ts";
import type { ChannelStats, NsqdStats, TopicStats } from "./nsqd_stats.ts";
import type { Nsqd, NsqLookupd, NsqServer } from "./nsq_server.ts";

/** Options of {@linkcode NsqCluster.readTopic}. */
export interface ReadTopicOptions {
  /** Fail when fewer messages arrived by then. Default 10 000. */
  timeoutMs?: number;
  /** Channel to consume from; created if missing. Default `"nsq_harness"`. */
  channel?: string;
  /** Index into {@linkcode NsqCluster.nsqds}. Default 0. */
  nsqd?: number;
}

/**
 * Running NSQ processes for one test. Every `nsqd` parameter below is an index
 * into {@linkcode NsqCluster.nsqds}, default 0.
 */
export interface NsqCluster extends AsyncDisposable {
  /** `null` when started with `lookupd: false`. */
  readonly lookupd: NsqLookupd | null;
  readonly nsqds: readonly Nsqd[];
  /**
   * Publishes one message over HTTP `/pub`. nsqd hands it to the topic's
   * channels a moment after this resolves, so wait for channel stats with
   * {@linkcode waitFor}.
   */
  publish(topic: string, body: string | Uint8Array, nsqd?: number): Promise<void>;
  /** Publishes messages in order over HTTP `/mpub`, in as many requests as nsqd's body limit needs. */
  publishMany(
    topic: string,
    bodies: readonly (string | Uint8Array)[],
    nsqd?: number,
  ): Promise<void>;
  createTopic(topic: string, nsqd?: number): Promise<void>;
  /** Creates the channel, and its topic if needed. */
  createChannel(topic: string, channel: string, nsqd?: number): Promise<void>;
  stats(nsqd?: number): Promise<NsqdStats>;
  /** Stats of one topic, or `null` when nsqd does not have it. */
  topic(topic: string, nsqd?: number): Promise<TopicStats | null>;
  /** Stats of one channel, or `null` when nsqd does not have it. */
  channel(topic: string, channel: string, nsqd?: number): Promise<ChannelStats | null>;
  /**
   * Consumes exactly `count` messages of a topic over NSQ TCP, finishes them and
   * returns their bodies in delivery order. Throws if they do not all arrive in
   * time. A channel that is new to a topic with other channels only sees
   * messages published after it was created.
   */
  readTopic(topic: string, count: number, options?: ReadTopicOptions): Promise<Uint8Array[]>;
  /** Stops every process and removes the temporary directories. Safe to call twice. */
  close(): Promise<void>;
}

/** The {@linkcode NsqCluster} of a root directory, an optional nsqlookupd and the nsqds. */
export class Cluster implements NsqCluster {
  #closing: Promise<void> | undefined;

  constructor(
    readonly root: string,
    readonly lookupd: NsqServer | null,
    readonly nsqds: readonly NsqServer[],
  ) {}

  #nsqd(index = 0): NsqServer {
    const nsqd = this.nsqds[index];
    if (nsqd === undefined) {
      throw new RangeError(
        `Cannot use nsqd ${index} as the cluster has nsqds 0..${this.nsqds.length - 1}`,
      );
    }
    return nsqd;
  }

  async publish(topic: string, body: string | Uint8Array, nsqd?: number): Promise<void> {
    await nsqdHttp.publish(this.#nsqd(nsqd).httpUrl, topic, body);
  }

  async publishMany(
    topic: string,
    bodies: readonly (string | Uint8Array)[],
    nsqd?: number,
  ): Promise<void> {
    await nsqdHttp.publishMany(this.#nsqd(nsqd).httpUrl, topic, bodies);
  }

  async createTopic(topic: string, nsqd?: number): Promise<void> {
    await nsqdHttp.createTopic(this.#nsqd(nsqd).httpUrl, topic);
  }

  async createChannel(topic: string, channel: string, nsqd?: number): Promise<void> {
    await nsqdHttp.createChannel(this.#nsqd(nsqd).httpUrl, topic, channel);
  }

  async stats(nsqd?: number): Promise<NsqdStats> {
    return await nsqdHttp.stats(this.#nsqd(nsqd).httpUrl);
  }

  async topic(topic: string, nsqd?: number): Promise<TopicStats | null> {
    return (await this.stats(nsqd)).topics.find((t) => t.topic_name === topic) ?? null;
  }

  async channel(topic: string, channel: string, nsqd?: number): Promise<ChannelStats | null> {
    const stats = await this.topic(topic, nsqd);
    return stats?.channels.find((c) => c.channel_name === channel) ?? null;
  }

  async readTopic(
    topic: string,
    count: number,
    options: ReadTopicOptions = {},
  ): Promise<Uint8Array[]> {
    const { timeoutMs = 10_000, channel = "nsq_harness", nsqd } = options;
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(
        `Cannot read topic "${topic}" as 'count' must be a non-negative integer: current value is ${count}`,
      );
    }
    if (count === 0) return [];
    return await consume(this.#nsqd(nsqd).tcpPort, topic, channel, count, timeoutMs);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const errors: unknown[] = [];
    // nsqds first, so that none logs lookupd connection errors while shutting down.
    for (const result of await Promise.allSettled(this.nsqds.map((nsqd) => nsqd.stop()))) {
      if (result.status === "rejected") errors.push(result.reason);
    }
    await this.lookupd?.stop().catch((error) => errors.push(error));
    await Deno.remove(this.root, { recursive: true }).catch((error) => errors.push(error));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "Cannot close NSQ cleanly");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
