/**
 * Broker faults (soak), against `nsqworker run` with its production timings:
 * nsqd stopped and restarted on its data directory every few seconds while
 * thirty thousand ids are published, and a handler that blocks the event
 * loop past two of the daemon's own 15 s heartbeats.
 */

import assert from "node:assert/strict";
import { startDaemon, TempDir } from "../tests/helpers/daemon_process.ts";
import { startNsq } from "../tests/helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../tests/helpers/nsq/unique_topic.ts";
import { waitFor } from "../tests/helpers/wait_for.ts";
import { Ledger, makeIds, readLedgerFile, reportFigures } from "../tests/reliability/ledger.ts";
import { startPublisher } from "../tests/reliability/paced_publisher.ts";

const CHANNEL = "soak";

function isMsg(msg: string): (line: string) => boolean {
  return (line) => line.includes(`"msg":"${msg}"`);
}

Deno.test("nsqd restarted eight times under load: every id handled, each once", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  await using dir = await TempDir.create();
  const topic = uniqueTopic("restarts");
  await nsq.createChannel(topic, CHANNEL);
  const out = dir.join("ledger.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsqd.tcpAddress] },
    http: { listen: null },
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "ledger",
      max_in_flight: 50,
      options: { out, sleep_ms: 5 },
    }],
  });
  await daemon.waitForLine(isMsg("connected to nsqd"));
  const ledger = new Ledger();
  const total = 30_000;
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("s", total),
    ledger,
    ratePerSec: 1_000,
  });
  const restarts = 8;
  for (let i = 1; i <= restarts; i++) {
    await waitFor(() => publisher.accepted >= (total * i) / (restarts + 1), {
      timeoutMs: 60_000,
      message: `restart ${i}`,
    });
    await nsqd.stop();
    await nsqd.start();
    await daemon.waitForLines(isMsg("reconnected to nsqd"), i, { timeoutMs: 60_000 });
  }
  await publisher.done;
  await waitFor(async () => (await readLedgerFile(out)).length >= total, {
    timeoutMs: 60_000,
    message: "every id handled",
  });
  await waitFor(async () => {
    const channel = await nsq.channel(topic, CHANNEL);
    return channel?.depth === 0 && channel.in_flight_count === 0 && channel.deferred_count === 0;
  }, { timeoutMs: 30_000, message: "nothing left in nsqd" });
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  for (const line of await readLedgerFile(out)) ledger.handled(line.id);
  const figures = {
    ...ledger.figures(),
    restarts,
    refused_publishes: publisher.refused,
    caught_by_dedupe: daemon.stdout.filter(isMsg("duplicate: already handled")).length,
  };
  reportFigures("nsqd_restart_soak", figures);
  assert.deepEqual(ledger.lost(10), []);
  assert.ok(figures.duplicated <= 50 * restarts);
});

Deno.test("a handler blocking the event loop for 35 s with the daemon's 15 s heartbeats: dropped, reconnected, not run twice", async () => {
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=10s"] });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("spin");
  await nsq.createChannel(topic, CHANNEL);
  const out = dir.join("ledger.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    http: { listen: null },
    workers: [{ topic, channel: CHANNEL, worker: "ledger", max_in_flight: 5, options: { out } }],
  });
  await daemon.waitForLine(isMsg("connected to nsqd"));
  const started = performance.now();
  await nsq.publish(topic, "blocker spin 35000");
  const queued = makeIds("q", 100);
  await nsq.publishMany(topic, queued);
  const lost = JSON.parse(
    await daemon.waitForLine(isMsg("nsqd connection lost; reconnecting"), { timeoutMs: 60_000 }),
  );
  await daemon.waitForLine(isMsg("reconnected to nsqd"), { timeoutMs: 60_000 });
  await daemon.waitForLine(isMsg("duplicate: already handled"), { timeoutMs: 30_000 });
  await waitFor(async () => (await readLedgerFile(out)).length >= queued.length + 1, {
    message: "every message handled",
  });
  const seconds = Math.round((performance.now() - started) / 1000);
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  const ids = (await readLedgerFile(out)).map((line) => line.id);
  assert.equal(ids.filter((id) => id === "blocker").length, 1, "the blocking handler ran twice");
  assert.equal(new Set(ids).size, ids.length);
  reportFigures("event_loop_blocked_soak", {
    blocked_ms: 35_000,
    heartbeat_ms: 15_000,
    connection_lost: lost.error,
    reconnect_delay_ms: lost.delay_ms,
    handled: ids.length,
    handled_twice: 0,
    seconds,
  });
});
