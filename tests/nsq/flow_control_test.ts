/**
 * Flow control against real nsqd, where it can break: RDY moving between
 * connections while handlers still run, scarce RDY over many nsqd, and
 * messages that nsqd sends past a lowered RDY it has not read yet.
 */
import assert from "node:assert/strict";
import { Consumer, type ConsumerOptions } from "../../src/nsq/consumer.ts";
import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { PLAIN_CONNECTION } from "../helpers/fakes.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import type { Nsqd } from "../helpers/nsq/nsq_server.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startTcpRelay } from "../helpers/tcp_relay.ts";

const CHANNEL = "flow_control_test";
const QUIET: Logger = { debug() {}, info() {}, warning() {}, error() {} };

/**
 * A consumer whose handler holds each message `holdMs` (null: until
 * `releaseAll()`) and keeps score.
 */
function consume(
  options: Partial<ConsumerOptions> & { topic: string; holdMs: number | null },
) {
  let { holdMs, ...rest } = options;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const held: (() => void)[] = [];
  const state = {
    running: 0,
    maxRunning: 0,
    /** Most messages received and unanswered at once, over every connection. */
    maxInFlight: 0,
    handled: [] as { message: NsqMessage; at: number }[],
    /** Handlers started while `max_in_flight` others were already running. */
    startedOverLimit: 0,
  };
  const consumer: Consumer = new Consumer({
    channel: CHANNEL,
    maxInFlight: 1,
    nsqdAddresses: [],
    lookupdUrls: [],
    log: QUIET,
    timings: { lookupdPollIntervalMs: 100, reconnectMinMs: 50, reconnectMaxMs: 200 },
    ...rest,
    connection: PLAIN_CONNECTION,
    onMessage: (message) => {
      if (state.running >= limit) state.startedOverLimit++;
      state.running++;
      state.maxRunning = Math.max(state.maxRunning, state.running);
      state.handled.push({ message, at: Date.now() });
      const finish = () => {
        // Messages nsqd sent beyond max_in_flight wait in the backlog, so
        // this is the moment they show.
        state.maxInFlight = Math.max(state.maxInFlight, consumer.inFlight);
        state.running--;
        message.finish();
      };
      if (holdMs === null) {
        held.push(finish);
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        finish();
      }, holdMs);
      timers.add(timer);
    },
  });
  const limit = options.maxInFlight ?? 1;
  consumer.start();
  return {
    consumer,
    state,
    /** Finishes every held message now; later ones are held `nextHoldMs`. */
    releaseAll(nextHoldMs: number) {
      holdMs = nextHoldMs;
      for (const finish of held.splice(0)) finish();
    },
    async [Symbol.asyncDispose]() {
      await waitFor(() => timers.size === 0, { message: "held messages to be finished" });
      await consumer.drain();
      await consumer.close();
    },
  };
}

const hostPort = (nsqd: Nsqd) => ({ host: "127.0.0.1", port: nsqd.tcpPort });

/**
 * Two nsqd with `topic`'s channel, the first behind a relay and the second
 * stopped: start a consumer on `nsqdAddresses`, then call `halveUnread`.
 */
async function unreadRdy(prefix: string) {
  const nsq = await startNsq({ nsqds: 2, lookupd: false });
  const topic = uniqueTopic(prefix);
  for (let i = 0; i < 2; i++) await nsq.createChannel(topic, CHANNEL, i);
  const [first, second] = nsq.nsqds as [Nsqd, Nsqd];
  await second.stop();
  const relay = startTcpRelay(first.tcpPort);
  return {
    nsq,
    relay,
    topic,
    nsqdAddresses: [{ host: "127.0.0.1", port: relay.port }, hostPort(second)],
    /**
     * Once the first nsqd has read RDY `maxInFlight`, holds what the
     * consumer sends it and brings the second nsqd up: the consumer halves
     * the first's RDY and, after the grace of that cut, gives the other half
     * to the second. The first nsqd has not read the cut, so it may still
     * send up to `maxInFlight`.
     */
    async halveUnread(consumer: Consumer, maxInFlight: number): Promise<void> {
      await waitFor(async () => await readyCount(nsq, topic, 0) === maxInFlight, {
        message: `RDY ${maxInFlight} read by the first nsqd`,
      });
      relay.hold();
      await second.start();
      await waitFor(
        () => consumer.status().connected.length === 2 && consumer.status().rdy === maxInFlight,
        { message: "RDY shared between the two nsqd" },
      );
      assert.equal(await readyCount(nsq, topic, 0), maxInFlight, "the cut is still unread");
    },
    async [Symbol.asyncDispose]() {
      await relay.close();
      await nsq.close();
    },
  };
}

/** The RDY count that nsqd `index` has read from the consumer of `topic`. */
async function readyCount(nsq: NsqCluster, topic: string, index: number): Promise<number | null> {
  const channel = await nsq.channel(topic, CHANNEL, index);
  return channel?.clients[0]?.ready_count ?? null;
}

Deno.test("RDY moving between 3 nsqd never lets nsqd send more than max_in_flight", async () => {
  await using nsq = await startNsq({ nsqds: 3, lookupd: false });
  const topic = uniqueTopic("flow_rotate");
  for (let i = 0; i < 3; i++) {
    await nsq.publishMany(topic, Array.from({ length: 150 }, (_, n) => `${i}.${n}`), i);
  }
  await using run = consume({
    topic,
    maxInFlight: 2,
    holdMs: 2,
    nsqdAddresses: nsq.nsqds.map(hostPort),
    // Slots move after 5 ms without a message: as often as RDY can move.
    timings: { rdyIdleMs: 5 },
  });
  await waitFor(() => run.state.handled.length === 450, {
    message: "450 messages",
    timeoutMs: 20_000,
  });
  assert.equal(run.state.maxRunning, 2, "handlers at once");
  assert.ok(
    run.state.maxInFlight <= 2,
    `received and unanswered at once: ${run.state.maxInFlight}`,
  );
  for (const nsqd of nsq.nsqds) {
    const from = run.state.handled.filter((h) => h.message.nsqdAddress === nsqd.tcpAddress);
    assert.equal(from.length, 150, nsqd.tcpAddress);
  }
});

Deno.test("what nsqd sends past a RDY cut it has not read waits: no handler beyond max_in_flight", async () => {
  await using net = await unreadRdy("flow_unread");
  await using run = consume({
    topic: net.topic,
    maxInFlight: 2,
    holdMs: null,
    nsqdAddresses: net.nsqdAddresses,
  });
  await net.halveUnread(run.consumer, 2);
  // The first nsqd sends both of its messages (it still has RDY 2), the second its one.
  await net.nsq.publishMany(net.topic, ["0.0", "0.1"], 0);
  await net.nsq.publish(net.topic, "1.0", 1);
  await waitFor(() => run.consumer.inFlight === 3, { message: "3 messages received" });
  assert.equal(run.state.running, 2, "handlers running");
  net.relay.release();
  run.releaseAll(2);
  await waitFor(() => run.state.handled.length === 3, { message: "3 messages" });
  assert.equal(run.state.startedOverLimit, 0, "handlers started beyond max_in_flight");
  assert.equal(run.state.maxInFlight, 3, "received and unanswered at once");
});

Deno.test("2 slots over 5 nsqd behind nsqlookupd: every nsqd is served, none waits long", async () => {
  await using nsq = await startNsq({ nsqds: 5 });
  const topic = uniqueTopic("flow_scarce");
  for (let i = 0; i < 5; i++) await nsq.createChannel(topic, CHANNEL, i);
  await using run = consume({
    topic,
    maxInFlight: 2,
    holdMs: 2,
    lookupdUrls: [nsq.lookupd!.httpUrl],
  });
  await waitFor(() => run.consumer.status().connected.length === 5, { message: "5 connections" });
  // Each nsqd gets its next message as soon as its last is handled, until
  // every one has had 40: a slot's holder never goes idle, so only the
  // time slice can hand its slot on to the nsqd waiting with a message.
  const published = new Map<string, number>();
  const sent = [0, 0, 0, 0, 0];
  const handledFrom = (i: number) =>
    run.state.handled.filter((h) => h.message.nsqdAddress === nsq.nsqds[i]!.tcpAddress).length;
  const served = () => sent.every((_, i) => handledFrom(i) >= 40);
  const due = () => sent.flatMap((n, i) => handledFrom(i) === n ? [i] : []);
  // Slots that moved only when their holder went idle would take far longer.
  const deadline = performance.now() + 8_000;
  while (!served()) {
    assert.ok(
      performance.now() < deadline,
      `every nsqd served 40 times within 8 s (handled ${sent.map((_, i) => handledFrom(i))})`,
    );
    await waitFor(() => served() || due().length > 0, {
      message: `every nsqd served 40 times (handled ${sent.map((_, i) => handledFrom(i))})`,
      intervalMs: 2,
      timeoutMs: 5_000,
    });
    if (served()) break;
    await Promise.all(
      due().map((i) => {
        const body = `${i}.${sent[i]!++}`;
        published.set(body, Date.now());
        return nsq.publish(topic, body, i);
      }),
    );
  }
  const total = sent.reduce((a, b) => a + b, 0);
  await waitFor(() => run.state.handled.length === total, {
    message: `${total} messages (got ${run.state.handled.length})`,
    timeoutMs: 5_000,
  });
  const latencies = run.state.handled.map(({ message, at }) =>
    at - published.get(new TextDecoder().decode(message.body))!
  ).sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
  for (const [i, nsqd] of nsq.nsqds.entries()) {
    const from = run.state.handled.filter((h) => h.message.nsqdAddress === nsqd.tcpAddress);
    assert.equal(from.length, sent[i], `served from ${nsqd.tcpAddress}`);
    assert.ok(from.length >= 40, `${from.length} served from ${nsqd.tcpAddress}`);
  }
  assert.ok(p99 < 1_500, `p99 publish to handler ${p99} ms`);
});

Deno.test("with a backlog, a message's finish() returns before the next handler starts", async () => {
  await using net = await unreadRdy("flow_order");
  const held: NsqMessage[] = [];
  /** Of the messages from the backlog: "start <id>" and "finished <id>", in order. */
  const order: string[] = [];
  let backlogged = false;
  let handled = 0;
  let insideFinish = false;
  let startedInsideFinish = 0;
  let mostInFlight = 0;
  const consumer: Consumer = new Consumer({
    topic: net.topic,
    channel: CHANNEL,
    maxInFlight: 20,
    nsqdAddresses: net.nsqdAddresses,
    lookupdUrls: [],
    log: QUIET,
    timings: { reconnectMinMs: 50, reconnectMaxMs: 200 },
    connection: PLAIN_CONNECTION,
    onMessage: (message) => {
      if (insideFinish) startedInsideFinish++;
      // The first 20 are held; the rest reach a handler only from the backlog.
      if (!backlogged) {
        held.push(message);
        return;
      }
      order.push(`start ${message.id}`);
      mostInFlight = Math.max(mostInFlight, consumer.inFlight);
      // Answered after the handler returned, as an async handler's is.
      queueMicrotask(() => {
        insideFinish = true;
        message.finish();
        insideFinish = false;
        order.push(`finished ${message.id}`);
        handled++;
      });
    },
  });
  consumer.start();
  try {
    await net.halveUnread(consumer, 20);
    // 20 held from the first nsqd (it still has RDY 20), then 10 more from the
    // second: 30 received for 20 handlers, 10 wait in the backlog.
    await net.nsq.publishMany(net.topic, Array.from({ length: 20 }, (_, n) => `0.${n}`), 0);
    await net.nsq.publishMany(net.topic, Array.from({ length: 10 }, (_, n) => `1.${n}`), 1);
    await waitFor(() => consumer.inFlight === 30, { message: "30 messages received" });
    backlogged = true;
    net.relay.release();
    // One handler frees up: the backlog goes through it one message at a time.
    insideFinish = true;
    held.shift()!.finish();
    insideFinish = false;
    await waitFor(() => handled === 10, { message: `10 messages (got ${handled})` });
    for (const message of held) message.finish();
  } finally {
    await consumer.drain();
    await consumer.close();
  }
  assert.ok(mostInFlight > 20, `a backlog formed (most in flight: ${mostInFlight})`);
  assert.equal(startedInsideFinish, 0, "handlers started inside another message's finish()");
  for (let i = 0; i < order.length; i += 2) {
    const id = order[i]!.slice("start ".length);
    assert.deepEqual(order.slice(i, i + 2), [`start ${id}`, `finished ${id}`], `at ${i}`);
  }
});
