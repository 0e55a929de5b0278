/**
 * Pausing a channel on nsqd itself, on every nsqd that has its topic,
 * through nsqd's own HTTP API (`POST /channel/pause`, `/channel/unpause`).
 * Unlike a pause of this daemon's entry (RDY 0), nsqd then holds the
 * messages for every consumer of the channel, and its `/stats` say the
 * channel is paused: what other daemons, `nsqadmin` and autoscalers see.
 *
 * @module
 */

import { formatHostPort } from "../config/address.ts";
import type { NsqConfig } from "../config/types.ts";
import { errorText } from "../error_text.ts";
import { findNsqds, type NsqdAddress } from "../replay/dead_letter_nsqds.ts";

/** What one nsqd answered. */
export interface ChannelPauseAnswer {
  /** Its TCP address (`nsqlookupd` when finding the nsqds failed). */
  readonly nsqd: string;
  /**
   * `done`: paused (or unpaused); `no_channel`: this nsqd has no such
   * channel; `failed`: see `error`.
   */
  readonly result: "done" | "no_channel" | "failed";
  readonly error?: string;
}

/** How long each nsqd is given to answer. */
const TIMEOUT_MS = 3000;

/**
 * Pauses (or unpauses) `channel` of `nsqTopic` on every nsqd that the
 * config names or an nsqlookupd lists for the topic.
 *
 * @example
 * ```ts
 * import { setChannelPaused } from "./channel_pause.ts";
 * import type { Config } from "../config/types.ts";
 *
 * declare const config: Config;
 * const answers = await setChannelPaused(config.nsq, "pageviews", "counter", true);
 * answers.every((a) => a.result !== "failed");
 * ```
 */
export async function setChannelPaused(
  nsq: NsqConfig,
  nsqTopic: string,
  channel: string,
  paused: boolean,
): Promise<ChannelPauseAnswer[]> {
  let nsqds: NsqdAddress[];
  try {
    nsqds = await findNsqds(nsq, nsqTopic);
  } catch (error) {
    return [{ nsqd: "nsqlookupd", result: "failed", error: errorText(error) }];
  }
  const action = paused ? "pause" : "unpause";
  return await Promise.all(nsqds.map(async (nsqd): Promise<ChannelPauseAnswer> => {
    const address = formatHostPort(nsqd);
    if (nsqd.httpUrl === null) {
      return {
        nsqd: address,
        result: "failed",
        error: "its HTTP address is unknown: name it in nsq.nsqd_http_addresses, " +
          "or let it register with an nsqlookupd of the config",
      };
    }
    const url = `${nsqd.httpUrl}/channel/${action}?topic=${encodeURIComponent(nsqTopic)}&channel=${
      encodeURIComponent(channel)
    }`;
    try {
      const response = await fetch(url, {
        method: "POST",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const body = await response.text();
      if (response.ok) return { nsqd: address, result: "done" };
      if (response.status === 404) return { nsqd: address, result: "no_channel" };
      return {
        nsqd: address,
        result: "failed",
        error: `POST ${url} answered ${response.status}: ${body.slice(0, 200)}`,
      };
    } catch (error) {
      return { nsqd: address, result: "failed", error: `POST ${url}: ${errorText(error)}` };
    }
  }));
}
