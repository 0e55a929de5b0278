/**
 * What a graceful shutdown does with the messages nsqd had already sent,
 * against a real nsqd, in process: nsqd counts an attempt for a message as
 * it sends it, so a message handed back unhandled comes back with an
 * attempt it never had.
 */

import assert from "node:assert/strict";
import { type InProcessDaemon, oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const COUNT = 3_000;
const STOP_AT = 500;

/** A daemon whose worker records each body's attempts in `seen`, then calls `after`. */
function startRecording(
  yaml: string,
  seen: Map<string, number>,
  after?: () => void,
): Promise<InProcessDaemon> {
  return startInProcess({
    yaml,
    logLevel: "info",
    workers: {
      "test/worker": {
        decode: "text",
        handle(body: string, ctx) {
          seen.set(body, ctx.message.attempts);
          after?.();
        },
      },
    },
  });
}

Deno.test("stopping while nsqd's messages wait unread: they are handled, none comes back with an attempt spent", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("stop_unread");
  const bodies = Array.from({ length: COUNT }, (_, i) => `m${i}`);
  await nsq.publishMany(topic, bodies);
  const yaml = oneEntryYaml(nsq.nsqds[0]!.tcpAddress, topic, "max_in_flight: 200");

  /** Attempts seen by the first daemon, and by the one started after it. */
  const first = new Map<string, number>();
  const second = new Map<string, number>();
  let afterStop = 0;
  let stopping: Promise<void> | undefined;
  const daemon: InProcessDaemon = await startRecording(yaml, first, () => {
    if (stopping !== undefined) afterStop++;
    if (first.size !== STOP_AT) return;
    // After this turn's FINs went out, so that nsqd sends more.
    setImmediate(() => {
      // Blocks the event loop on purpose: nsqd sends up to its RDY and its
      // messages pile up unread; then the daemon stops.
      const until = performance.now() + 200;
      while (performance.now() < until) {
        // Nothing is read meanwhile.
      }
      stopping = daemon.shutdown();
    });
  });
  try {
    await waitFor(() => stopping !== undefined, { message: `${STOP_AT} handled` });
    await stopping;
  } finally {
    await daemon.shutdown();
  }
  const channel = await nsq.channel(topic, "work");
  assert.deepEqual(
    [channel?.in_flight_count, channel?.requeue_count, channel?.timeout_count],
    [0, 0, 0],
    `in flight, requeued, timed out; ${afterStop} handled after the stop began`,
  );
  assert.ok(afterStop > 0, "messages that arrived after the stop began were handled");

  await using next = await startRecording(yaml, second);
  await waitFor(() => first.size + second.size >= COUNT, {
    message: `all ${COUNT} handled (${first.size} + ${second.size})`,
  });
  await next.shutdown();
  assert.deepEqual([...first.keys()].filter((body) => second.has(body)), [], "handled twice");
  const spent = [...second].filter(([, attempts]) => attempts !== 1);
  assert.deepEqual(spent, [], "came back to the next daemon with an attempt spent");
  assert.equal(first.size + second.size, COUNT);
});
