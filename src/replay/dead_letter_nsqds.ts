/**
 * The nsqd that hold a dead letter topic, with the HTTP address each
 * answers `/stats` on, and how many messages its channel still holds.
 *
 * @module
 */

import { formatHostPort } from "../config/address.ts";
import type { NsqConfig } from "../config/types.ts";
import { producersIn } from "../nsq/lookupd.ts";
import { nsqdHttpAddress } from "../nsq/nsqd_http_address.ts";

/** One nsqd: its TCP address, and its HTTP base URL for stats (null: unknown). */
export interface NsqdAddress {
  readonly host: string;
  readonly port: number;
  readonly httpUrl: string | null;
}

/**
 * The direct `nsqd_tcp_addresses`, and the producers of `topic` that each
 * nsqlookupd knows, once each. A direct nsqd's HTTP address comes from the
 * config or nsqlookupd; when neither tells, `warn` says so and its stats are
 * unknown.
 */
export async function findNsqds(
  nsq: NsqConfig,
  topic: string,
  warn: (text: string) => void = () => {},
): Promise<NsqdAddress[]> {
  const found = new Map<string, NsqdAddress>();
  const direct = await Promise.all(
    nsq.nsqdTcpAddresses.map(async (nsqd) => ({ nsqd, http: await nsqdHttpAddress(nsq, nsqd) })),
  );
  for (const { nsqd: { host, port }, http } of direct) {
    if (http.url === null) warn(`${http.why}: what its channel holds is unknown`);
    found.set(formatHostPort({ host, port }), { host, port, httpUrl: http.url });
  }
  const answers = await Promise.all(
    nsq.lookupdHttpAddresses.map((base) => lookupWithHttp(base, topic)),
  );
  for (const producer of answers.flat()) {
    found.set(formatHostPort(producer), producer);
  }
  return [...found.values()];
}

async function lookupWithHttp(baseUrl: string, topic: string): Promise<NsqdAddress[]> {
  const url = `${baseUrl}/lookup?topic=${encodeURIComponent(topic)}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  if (response.status === 404) return []; // nobody has published the topic
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 200)}`);
  return producersIn(url, text).flatMap((p) => {
    const host = p?.broadcast_address ?? p?.hostname;
    const { tcp_port: port, http_port: httpPort } = p ?? {};
    if (typeof host !== "string" || !Number.isInteger(port) || !Number.isInteger(httpPort)) {
      return [];
    }
    return [{ host, port, httpUrl: `http://${formatHostPort({ host, port: httpPort })}` }];
  });
}

/** What nsqd's stats say one channel holds, and what its topic holds yet to hand to channels. */
export interface ChannelBacklog {
  /** Waiting to be sent, memory and disk. */
  readonly depth: number;
  readonly inFlight: number;
  readonly deferred: number;
  /** Held by the topic itself: it has no channel yet, or it is paused. */
  readonly topicDepth: number;
}

/**
 * What `topic`/`channel` holds on one nsqd (all zero when nsqd has no such
 * channel, but `topicDepth`). Null when nsqd's HTTP API is unknown or does not answer.
 */
export async function channelBacklog(
  nsqd: NsqdAddress,
  topic: string,
  channel: string,
): Promise<ChannelBacklog | null> {
  if (nsqd.httpUrl === null) return null;
  const url = `${nsqd.httpUrl}/stats?format=json&topic=${encodeURIComponent(topic)}&channel=${
    encodeURIComponent(channel)
  }`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    const stats = await response.json();
    const topics: unknown[] = stats?.topics ?? stats?.data?.topics ?? [];
    for (const t of topics as { topic_name?: string; depth?: unknown; channels?: unknown[] }[]) {
      if (t.topic_name !== topic) continue;
      const topicDepth = Number(t.depth) || 0;
      for (const c of (t.channels ?? []) as Record<string, unknown>[]) {
        if (c.channel_name !== channel) continue;
        return {
          depth: Number(c.depth) || 0,
          inFlight: Number(c.in_flight_count) || 0,
          deferred: Number(c.deferred_count) || 0,
          topicDepth,
        };
      }
      return { depth: 0, inFlight: 0, deferred: 0, topicDepth };
    }
    return { depth: 0, inFlight: 0, deferred: 0, topicDepth: 0 };
  } catch {
    return null;
  }
}
