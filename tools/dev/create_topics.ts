/**
 * The topics and channels of a config, created on the nsqd that dev runs.
 *
 * @module
 */

import type { Config } from "../../src/config/types.ts";

/**
 * Creates each entry's topic and channel on the local nsqd, so that it
 * registers them with nsqlookupd before the daemon asks, and messages
 * published before the daemon subscribes wait in the channel. Ephemeral
 * ones would vanish without a consumer; they are left to the daemon.
 */
export async function createTopics(nsqdHttp: string, config: Config): Promise<void> {
  for (const entry of config.workers) {
    if (entry.nsqTopic.endsWith("#ephemeral") || entry.channel.endsWith("#ephemeral")) continue;
    const topic = encodeURIComponent(entry.nsqTopic);
    const channel = encodeURIComponent(entry.channel);
    for (
      const path of [
        `topic/create?topic=${topic}`,
        `channel/create?topic=${topic}&channel=${channel}`,
      ]
    ) {
      const response = await fetch(`${nsqdHttp}/${path}`, { method: "POST" });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(`POST ${nsqdHttp}/${path} answered ${response.status}: ${text}`);
      }
    }
  }
}
