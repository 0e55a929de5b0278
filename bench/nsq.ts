/**
 * What the bench asks of its nsqd beyond the test harness
 * (tests/helpers/nsq/): one channel's counters through a filtered
 * `/stats`, topic deletion, preloading, and the payloads.
 *
 * @module
 */

import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { traceIdRatioSampled } from "../src/observe/trace_sampler.ts";
import { sleep } from "./child.ts";

/** The counters of one channel that the bench follows. */
export interface ChannelState {
  /** Waiting, in flight or deferred: everything not finished yet. */
  readonly remaining: number;
  readonly depth: number;
  readonly inFlight: number;
  readonly clients: number;
  /** RDY summed over the clients. */
  readonly ready: number;
  readonly finished: number;
}

interface RawStats {
  topics?: {
    topic_name?: string;
    channels?: {
      channel_name?: string;
      depth?: number;
      in_flight_count?: number;
      deferred_count?: number;
      clients?: { finish_count?: number; ready_count?: number }[] | null;
    }[] | null;
  }[] | null;
}

/** One channel's counters, or null when nsqd does not have it. */
export async function channelState(
  httpUrl: string,
  topic: string,
  channel: string,
): Promise<ChannelState | null> {
  const url = `${httpUrl}/stats?format=json&include_mem=false&topic=${
    encodeURIComponent(topic)
  }&channel=${encodeURIComponent(channel)}`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  const stats = await response.json() as RawStats;
  const found = stats.topics?.find((t) => t.topic_name === topic)?.channels
    ?.find((c) => c.channel_name === channel);
  if (!found) return null;
  const depth = found.depth ?? 0;
  const inFlight = found.in_flight_count ?? 0;
  const clients = found.clients ?? [];
  return {
    remaining: depth + inFlight + (found.deferred_count ?? 0),
    depth,
    inFlight,
    clients: clients.length,
    ready: clients.reduce((sum, c) => sum + (c.ready_count ?? 0), 0),
    finished: clients.reduce((sum, c) => sum + (c.finish_count ?? 0), 0),
  };
}

/** Deletes a topic and its channels (and the messages they hold). */
export async function deleteTopic(httpUrl: string, topic: string): Promise<void> {
  const url = `${httpUrl}/topic/delete?topic=${encodeURIComponent(topic)}`;
  const response = await fetch(url, { method: "POST" });
  await response.body?.cancel();
}

/**
 * The share of the bodies' traces sampled upstream: their `traceparent`
 * flags are what a publisher under `parentbased_traceidratio` at this ratio
 * wrote.
 */
export const UPSTREAM_SAMPLING_RATIO = 0.01;

/**
 * `count` JSON bodies of `size` bytes,
 * `{"clicks":1,"event_id":"…","traceparent":"…","pad":"…"}`: JSON because the
 * seed's worker decodes JSON, and the same bytes for every peer. The event ids
 * differ; nsqworker's no-op worker keys on the message id. Each carries a
 * traceparent of its own trace, so that with tracing on the daemon reads it
 * as it would in production: a trace id drawn from a fixed seed, sampled
 * (flags `01`) for the {@linkcode UPSTREAM_SAMPLING_RATIO} of them that
 * ratio keeps.
 */
export function payloads(count: number, size: number): Uint8Array[] {
  const encoder = new TextEncoder();
  const bodies: Uint8Array[] = [];
  const hex = seededHex(0x9e3779b9);
  for (let i = 0; i < count; i++) {
    const traceId = hex(32);
    const flags = traceIdRatioSampled(traceId, UPSTREAM_SAMPLING_RATIO) ? "01" : "00";
    const traceparent = `00-${traceId}-00000000000000a1-${flags}`;
    const head = `{"clicks":1,"event_id":"e${i}","traceparent":"${traceparent}","pad":"`;
    const pad = "x".repeat(Math.max(0, size - head.length - 2));
    bodies.push(encoder.encode(`${head}${pad}"}`));
  }
  return bodies;
}

/** Hex digits from xorshift32: the same every run, spread like random ids. */
function seededHex(seed: number): (digits: number) => string {
  let state = seed >>> 0;
  return (digits) => {
    let hex = "";
    while (hex.length < digits) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      hex += state.toString(16).padStart(8, "0");
    }
    return hex.slice(0, digits);
  };
}

/**
 * Creates `channel` of `topic` (so every message published lands in it),
 * publishes `bodies`, and waits until the channel holds all of them.
 */
export async function preload(
  nsq: NsqCluster,
  topic: string,
  channel: string,
  bodies: readonly Uint8Array[],
  signal: AbortSignal,
): Promise<void> {
  await nsq.createChannel(topic, channel);
  await nsq.publishMany(topic, bodies);
  const httpUrl = nsq.nsqds[0]!.httpUrl;
  const deadline = performance.now() + 60_000;
  for (;;) {
    const state = await channelState(httpUrl, topic, channel);
    if (state && state.depth >= bodies.length) return;
    if (performance.now() > deadline) {
      throw new Error(
        `channel ${topic}/${channel} holds ${
          state?.depth ?? 0
        } of ${bodies.length} messages after 60 s`,
      );
    }
    await sleep(20, signal);
  }
}
