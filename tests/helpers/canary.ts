/**
 * A canary for TOUCH tests: a bare connection that takes one message of a
 * channel and holds it without TOUCH. nsqd looks for timed-out messages of
 * a new channel only after its next refresh of the channel list (every 5 s
 * in nsqd 1.3.0); once the canary has timed out, an untouched message
 * delivered before it would have too.
 *
 * @module
 */

import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import { ReaderConnection } from "../../src/nsq/reader_connection.ts";
import type { NsqCluster } from "./nsq/nsq_cluster.ts";

/** A canary connection and the messages it holds. */
export interface Canary extends AsyncDisposable {
  /** Every message delivered to the bare connection. */
  readonly held: readonly NsqMessage[];
  /** Whether nsqd has timed out a message of the channel (the canary). */
  timedOut(): Promise<boolean>;
}

/**
 * Connects a bare consumer with RDY 1 to the channel on the cluster's first
 * nsqd and publishes `body` (the canary). Disposing of it finishes what it
 * holds and closes it.
 */
export async function openCanary(
  nsq: NsqCluster,
  topic: string,
  channel: string,
  body = "canary",
): Promise<Canary> {
  const [host, port] = nsq.nsqds[0]!.tcpAddress.split(":");
  const held: NsqMessage[] = [];
  const connection: ReaderConnection = new ReaderConnection(host!, Number(port), topic, channel, {
    authSecret: null,
    tls: null,
    compression: "none",
    heartbeatIntervalMs: 1_000,
    idleTimeoutMs: 10_000,
  }, {
    ready: () => connection.setRdy(1),
    message: (message) => void held.push(message),
    responded() {},
    closed() {},
    error() {},
  });
  connection.connect();
  const close = async () => {
    for (const message of held) message.finish();
    await connection.drain();
    await connection.close();
  };
  try {
    await nsq.publish(topic, body);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    held,
    timedOut: async () => ((await nsq.channel(topic, channel))?.timeout_count ?? 0) >= 1,
    [Symbol.asyncDispose]: close,
  };
}
