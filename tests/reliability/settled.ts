/**
 * The end of a fault test: every published id handled and nothing left for
 * the channel on nsqd (no backlog, nothing in flight or deferred).
 *
 * @module
 */

import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { waitFor } from "../helpers/wait_for.ts";
import type { Ledger } from "./ledger.ts";

/** Waits until `ledger` is complete and `channel` of `topic` holds nothing on nsqd. */
export async function waitSettled(
  nsq: NsqCluster,
  topic: string,
  channel: string,
  ledger: Ledger,
): Promise<void> {
  await waitFor(() => ledger.complete(), { timeoutMs: 30_000, message: "every id handled" });
  await waitFor(async () => {
    const stats = await nsq.channel(topic, channel);
    return stats !== null && stats.depth + stats.in_flight_count + stats.deferred_count === 0;
  }, { timeoutMs: 20_000, message: "nothing left on nsqd" });
}
