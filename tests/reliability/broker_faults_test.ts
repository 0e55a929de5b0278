/**
 * Broker faults under load, against real nsqd and nsqlookupd: nsqd stopped
 * and restarted on its data directory, nsqd down when the daemon starts, an
 * nsqd added to and removed from nsqlookupd, nsqlookupd down. A publisher
 * keeps publishing ids throughout (retrying while nsqd refuses); each test
 * ends with every id handled at least once.
 *
 * The supervisor runs in process (tests/helpers/in_process.ts, reconnecting
 * after 100–500 ms and asking nsqlookupd every 200 ms), except for "nsqd
 * down at start", which runs `nsqworker run` with its production timings
 * and a real HTTP listener.
 */

import assert from "node:assert/strict";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { Ledger, makeIds, readLedgerFile, reportFigures } from "./ledger.ts";
import { startPublisher } from "./paced_publisher.ts";

const CHANNEL = "work";
const MAX_IN_FLIGHT = 10;

/** Records each body (an id) once its handler has done its (short) work. */
function recorder(ledger: Ledger): WorkerDefinition<string> {
  return {
    decode: "text",
    async handle(id) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      ledger.handled(id);
    },
  };
}

function yaml(
  topic: string,
  nsq: { nsqd?: readonly string[]; lookupd?: readonly string[] },
  publish?: string,
): string {
  return [
    "nsq:",
    `  nsqd_tcp_addresses: [${(nsq.nsqd ?? []).join(", ")}]`,
    `  lookupd_http_addresses: [${(nsq.lookupd ?? []).join(", ")}]`,
    ...(publish ? [`  publish_nsqd_tcp_address: ${publish}`] : []),
    "defaults:",
    "  requeue_delay: 10ms",
    "  max_requeue_delay: 50ms",
    "workers:",
    `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: ${MAX_IN_FLIGHT} }`,
    "",
  ].join("\n");
}

function status(daemon: InProcessDaemon) {
  return daemon.supervisor.entries[0]!.consumer.status();
}

/** Every channel of the topic on these nsqd emptied, with nothing in flight or deferred. */
async function drained(nsq: NsqCluster, topic: string, nsqds: readonly number[]): Promise<void> {
  await waitFor(async () => {
    for (const i of nsqds) {
      const channel = await nsq.channel(topic, CHANNEL, i);
      if (channel === null) continue;
      if (channel.depth + channel.in_flight_count + channel.deferred_count > 0) return false;
    }
    return true;
  }, { message: `nothing left on nsqd ${nsqds.join(", ")}` });
}

function assertNothingLost(name: string, ledger: Ledger, extra: Record<string, unknown> = {}) {
  const figures = { ...ledger.figures(), ...extra };
  reportFigures(name, figures);
  assert.deepEqual(ledger.lost(10), [], `${name}: ids lost`);
  assert.deepEqual(ledger.strangers(), []);
  return figures;
}

async function producersOf(nsq: NsqCluster, topic: string): Promise<string[]> {
  const response = await fetch(`${nsq.lookupd!.httpUrl}/lookup?topic=${topic}`);
  if (response.status === 404) {
    await response.body?.cancel();
    return [];
  }
  const body = await response.json();
  return (body.producers as { broadcast_address: string; tcp_port: number }[])
    .map((p) => `${p.broadcast_address}:${p.tcp_port}`);
}

Deno.test("nsqd stopped and restarted on its data directory twice under load: nothing lost", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const topic = uniqueTopic("restart");
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [nsqd.tcpAddress] }),
    workers: { rec: recorder(ledger) },
  });
  const total = 4_000;
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("r", total),
    ledger,
    ratePerSec: 1_000,
  });
  const restarts = [1_000, 2_500];
  for (const after of restarts) {
    await waitFor(() => publisher.accepted >= after, { message: `${after} published` });
    await nsqd.stop();
    await waitFor(() => !daemon.supervisor.readiness().ready, { message: "not ready" });
    const refused = publisher.refused;
    await waitFor(() => publisher.refused > refused, { message: "publishes refused meanwhile" });
    await nsqd.start();
    await waitFor(() => daemon.supervisor.readiness().ready, { message: "ready again" });
  }
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 20_000, message: "every id handled" });
  await drained(nsq, topic, [0]);
  await daemon.shutdown();

  const outcomes = daemon.supervisor.entries[0]!.stats.snapshot().outcomes;
  const figures = assertNothingLost("nsqd_restart", ledger, {
    restarts: restarts.length,
    refused_publishes: publisher.refused,
    redelivered_caught_by_dedupe: outcomes.duplicate,
  });
  assert.ok(figures.duplicated <= MAX_IN_FLIGHT * restarts.length, `${figures.duplicated} dups`);
});

Deno.test("a message whose nsqd connection is lost before its answer leaves no timer behind", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const topic = uniqueTopic("lost_answer");
  const release = Promise.withResolvers<void>();
  let started = 0;
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [nsqd.tcpAddress] }),
    workers: {
      rec: {
        decode: "text",
        async handle() {
          started++;
          await release.promise;
        },
      },
    },
  });
  await nsq.publish(topic, "held");
  await waitFor(() => started === 1, { message: "the handler running" });
  await nsqd.stop();
  await waitFor(() => !daemon.supervisor.readiness().ready, { message: "connection lost" });
  release.resolve();
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === 1, { message: "handler returned" });
  await daemon.shutdown();
  // The op sanitizer fails this test if anything still tracks the message (nsqjs's
  // Message kept a msg_timeout timer for every delivery until it was answered).
});

Deno.test("nsqd down when nsqworker run starts: /ready 503, then 200 within one reconnect delay of nsqd coming up", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  await using dir = await TempDir.create();
  const topic = uniqueTopic("down_at_start");
  const ledger = new Ledger();
  // Published while nothing consumes, kept on disk by nsqd's graceful stop.
  const early = makeIds("e", 300);
  await nsq.publishMany(topic, early);
  ledger.published(early);
  await nsqd.stop();

  const out = dir.join("ledger.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsqd.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: "127.0.0.1:0" },
    workers: [{ topic, channel: CHANNEL, worker: "ledger", options: { out } }],
  });
  const address = JSON.parse(await daemon.waitForLine((l) => l.includes('"http listening"')))
    .address;
  const ready = async () => {
    const response = await fetch(`http://${address}/ready`);
    return { status: response.status, body: await response.json() };
  };
  const reconnecting = () =>
    daemon.stdout.filter((l) => l.includes('"msg":"nsqd connection lost; reconnecting"'))
      .map((l) => JSON.parse(l).delay_ms as number);
  await waitFor(() => reconnecting().length >= 2, { message: "two failed connection attempts" });
  const down = await ready();
  assert.equal(down.status, 503);
  assert.deepEqual(down.body.reasons, [
    `${topic}/${CHANNEL}: not subscribed on nsqd ${nsqd.tcpAddress}`,
  ]);

  await nsqd.start();
  const upAt = performance.now();
  await waitFor(async () => (await ready()).status === 200, {
    intervalMs: 20,
    timeoutMs: 20_000,
    message: "/ready 200",
  });
  const readyAfterMs = Math.round(performance.now() - upAt);
  // The attempt that succeeds was scheduled, at the latest, with the longest delay logged so far.
  const delays = reconnecting();
  const interval = Math.max(...delays);
  assert.ok(
    readyAfterMs <= interval + 1_000,
    `ready ${readyAfterMs} ms after nsqd came up; reconnect delays were ${delays.join(", ")} ms`,
  );

  const late = makeIds("l", 300);
  await nsq.publishMany(topic, late);
  ledger.published(late);
  await waitFor(async () => (await readLedgerFile(out)).length >= early.length + late.length, {
    message: "every id handled",
  });
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  for (const line of await readLedgerFile(out)) ledger.handled(line.id);
  assertNothingLost("nsqd_down_at_start", ledger, {
    reconnect_delays_ms: delays,
    ready_after_nsqd_up_ms: readyAfterMs,
  });
});

Deno.test("an nsqd added to nsqlookupd is consumed; removed under load, its RDY goes back; re-added, its rest is handled", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  const [first, second] = nsq.nsqds as [typeof nsq.nsqds[0], typeof nsq.nsqds[0]];
  const topic = uniqueTopic("added_removed");
  await nsq.createChannel(topic, CHANNEL, 0);
  await waitFor(async () => (await producersOf(nsq, topic)).length === 1, {
    message: "nsqlookupd lists the first nsqd",
  });
  const ledger = new Ledger();
  await using daemon = await startInProcess({
    yaml: yaml(topic, { lookupd: [nsq.lookupd!.httpUrl] }, first!.tcpAddress),
    workers: { rec: recorder(ledger) },
  });
  await waitFor(() => status(daemon).connected.length === 1, { message: "first nsqd" });
  await using toFirst = startPublisher({
    nsq,
    topic,
    ids: makeIds("a", 3_000),
    ledger,
    ratePerSec: 800,
  });

  // Added: publishing creates the topic on the second nsqd, which registers it.
  await using toSecond = startPublisher({
    nsq,
    topic,
    ids: makeIds("b", 3_000),
    ledger,
    ratePerSec: 800,
    target: () => 1,
  });
  const addedAt = performance.now();
  await waitFor(() => status(daemon).connected.includes(second!.tcpAddress), {
    message: "the added nsqd consumed",
  });
  const discoveredMs = Math.round(performance.now() - addedAt);

  // Removed while both publishers run: it leaves nsqlookupd, keeping its queue on disk.
  await waitFor(() => ledger.distinctHandled >= 1_500, { message: "1500 handled" });
  await second!.stop();
  await waitFor(() => {
    const { connected, disconnected } = status(daemon);
    return !connected.includes(second!.tcpAddress) && !disconnected.includes(second!.tcpAddress);
  }, { message: "the removed nsqd forgotten" });
  assert.equal(daemon.supervisor.readiness().ready, true, "ready on the first nsqd alone");
  await waitFor(async () => {
    const clients = (await nsq.channel(topic, CHANNEL, 0))?.clients ?? [];
    return clients.length === 1 && clients[0]!.ready_count === MAX_IN_FLIGHT;
  }, { message: `RDY ${MAX_IN_FLIGHT} on the first nsqd` });
  await toFirst.done;

  // Re-added: it registers its topic again on start, and what it kept is handled.
  await second!.start();
  await toSecond.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 20_000, message: "every id handled" });
  await drained(nsq, topic, [0, 1]);
  await daemon.shutdown();
  const figures = assertNothingLost("nsqd_added_removed", ledger, {
    discovered_after_ms: discoveredMs,
    refused_publishes: toSecond.refused,
  });
  assert.ok(figures.duplicated <= MAX_IN_FLIGHT, `${figures.duplicated} duplicates`);
});

Deno.test("nsqlookupd down: direct and known nsqd keep being consumed; once it is back, a new nsqd is found", async () => {
  await using nsq = await startNsq({ nsqds: 3 });
  const topic = uniqueTopic("lookupd_down");
  for (const i of [0, 1]) await nsq.createChannel(topic, CHANNEL, i);
  await waitFor(async () => (await producersOf(nsq, topic)).length === 2, {
    message: "nsqlookupd lists two nsqd",
  });
  const ledger = new Ledger();
  await using daemon = await startInProcess({
    yaml: yaml(
      topic,
      { nsqd: [nsq.nsqds[0]!.tcpAddress], lookupd: [nsq.lookupd!.httpUrl] },
      nsq.nsqds[0]!.tcpAddress,
    ),
    workers: { rec: recorder(ledger) },
  });
  await waitFor(() => status(daemon).connected.length === 2, { message: "two nsqd" });

  // The third nsqd is off while nsqlookupd is away: one that was registered before
  // notices the new nsqlookupd only at its next 15 s ping.
  await nsq.nsqds[2]!.stop();
  await nsq.lookupd!.stop();
  const lookupdFailed = () =>
    daemon.logs.filter((r) => r.msg === "nsqlookupd did not answer").length;
  await waitFor(() => lookupdFailed() === 1, { message: "nsqlookupd's silence logged" });
  await using toFirst = startPublisher({
    nsq,
    topic,
    ids: makeIds("d", 1_500),
    ledger,
    ratePerSec: 1_500,
  });
  await using toSecond = startPublisher({
    nsq,
    topic,
    ids: makeIds("k", 1_500),
    ledger,
    ratePerSec: 1_500,
    target: () => 1,
  });
  await Promise.all([toFirst.done, toSecond.done]);
  await waitFor(() => ledger.complete(), { message: "every id handled without nsqlookupd" });
  assert.equal(status(daemon).connected.length, 2);
  assert.equal(daemon.supervisor.readiness().ready, true);

  // Back, empty: the third nsqd starts and registers the topic as soon as it is published to.
  await nsq.lookupd!.start();
  await nsq.nsqds[2]!.start();
  await using toThird = startPublisher({
    nsq,
    topic,
    ids: makeIds("n", 1_000),
    ledger,
    ratePerSec: 1_500,
    target: () => 2,
  });
  await waitFor(() => status(daemon).connected.includes(nsq.nsqds[2]!.tcpAddress), {
    message: "the third nsqd found once nsqlookupd is back",
  });
  await toThird.done;
  await waitFor(() => ledger.complete(), { message: "every id handled" });
  await drained(nsq, topic, [0, 1, 2]);
  await daemon.shutdown();
  assert.equal(lookupdFailed(), 1, "logged once, not at every poll");
  const figures = assertNothingLost("lookupd_down", ledger);
  assert.equal(figures.duplicated, 0);
});
