/**
 * What a dead letter topic holds, as nsqd's `/stats` report it, summed over
 * every nsqd the config names or an nsqlookupd lists for the topic: the
 * topic's own depth (dead letters not yet handed to a channel; all of them
 * while no channel exists) and each channel's.
 *
 * @module
 */

import { formatHostPort } from "../config/address.ts";
import type { NsqConfig } from "../config/types.ts";
import { errorText } from "../error_text.ts";
import { findNsqds, type NsqdAddress } from "../replay/dead_letter_nsqds.ts";

/** One dead letter topic's depth. */
export interface TopicDepth {
  /** The topic on nsqd (with `topic_prefix`). */
  readonly topic: string;
  /** Held by the topic itself, over every nsqd that answered. */
  readonly depth: number;
  /** Each channel's depth (waiting, in flight and deferred), over every nsqd that answered. */
  readonly channels: readonly { readonly name: string; readonly depth: number }[];
  /** Why an nsqd's figures are missing from the sums. */
  readonly problems: readonly string[];
}

const TIMEOUT_MS = 2000;

/**
 * Reads the depth of `nsqTopic`.
 *
 * @example
 * ```ts
 * import { topicDepth } from "./dead_letter_depth.ts";
 * import type { Config } from "../config/types.ts";
 *
 * declare const config: Config;
 * (await topicDepth(config.nsq, "pageviews.dead")).depth;
 * ```
 */
export async function topicDepth(nsq: NsqConfig, nsqTopic: string): Promise<TopicDepth> {
  const problems: string[] = [];
  let nsqds: NsqdAddress[];
  try {
    nsqds = await findNsqds(nsq, nsqTopic, (text) => problems.push(text));
  } catch (error) {
    return { topic: nsqTopic, depth: 0, channels: [], problems: [errorText(error)] };
  }
  let depth = 0;
  const channels = new Map<string, number>();
  await Promise.all(nsqds.map(async (nsqd) => {
    if (nsqd.httpUrl === null) return;
    const url = `${nsqd.httpUrl}/stats?format=json&include_clients=false&topic=${
      encodeURIComponent(nsqTopic)
    }`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!response.ok) {
        await response.body?.cancel();
        problems.push(`nsqd ${formatHostPort(nsqd)}: ${url} answered ${response.status}`);
        return;
      }
      const stats = await response.json();
      for (const topic of (stats?.topics ?? []) as Record<string, unknown>[]) {
        if (topic.topic_name !== nsqTopic) continue;
        depth += Number(topic.depth) || 0;
        for (const c of (topic.channels ?? []) as Record<string, unknown>[]) {
          const name = String(c.channel_name);
          const held = (Number(c.depth) || 0) + (Number(c.in_flight_count) || 0) +
            (Number(c.deferred_count) || 0);
          channels.set(name, (channels.get(name) ?? 0) + held);
        }
      }
    } catch (error) {
      problems.push(`nsqd ${formatHostPort(nsqd)}: ${errorText(error)}`);
    }
  }));
  return {
    topic: nsqTopic,
    depth,
    channels: [...channels].map(([name, depth]) => ({ name, depth })),
    problems,
  };
}
