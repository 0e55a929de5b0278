/**
 * Flow control against real nsqd, where it can break: RDY moving between
 * connections while handlers still run, scarce RDY over many nsqd, and a
 * lowered `max_in_flight` while messages are on the wire.
 */
import assert from "node:assert/strict";
import { Consumer, type ConsumerOptions } from "../../src/nsq/consumer.ts";
import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { PLAIN_CONNECTION } from "../helpers/fakes.ts";
import { type Nsqd, startNsq, uniqueTopic, waitFor } from "../helpers/nsq.ts";

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
  let limit = options.maxInFlight ?? 1;
  consumer.start();
  return {
    consumer,
    state,
    setMaxInFlight(value: number) {
      limit = value;
      consumer.setMaxInFlight(value);
    },
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

Deno.test("a lowered max_in_flight holds back what nsqd already sent: no handler beyond it", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("flow_lowered");
  await nsq.publishMany(topic, Array.from({ length: 600 }, (_, n) => `${n}`));
  await using run = consume({
    topic,
    maxInFlight: 50,
    holdMs: null,
    nsqdAddresses: [hostPort(nsq.nsqds[0]!)],
  });
  await waitFor(() => run.state.running === 50, { message: "50 handlers running" });
  // 50 FINs go out; while this process does not read its socket, nsqd sends
  // 50 more into it; only then is max_in_flight lowered. Those 50 must wait
  // for a free handler, not start at once.
  run.releaseAll(2);
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const until = performance.now() + 200;
  while (performance.now() < until) {
    // Blocks the event loop on purpose: nsqd's replies pile up unread.
  }
  run.setMaxInFlight(1);
  await waitFor(() => run.state.handled.length === 600, {
    message: "600 messages",
    timeoutMs: 30_000,
  });
  assert.equal(run.state.startedOverLimit, 0, "handlers started beyond max_in_flight");
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
  // 20 messages a second to each nsqd for 2 s, far below what 2 slots can take.
  const sent: Promise<void>[] = [];
  const published = new Map<string, number>();
  for (let tick = 0; tick < 40; tick++) {
    for (let i = 0; i < 5; i++) {
      const body = `${i}.${tick}`;
      published.set(body, Date.now());
      sent.push(nsq.publish(topic, body, i));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await Promise.all(sent);
  await waitFor(() => run.state.handled.length === 200, {
    message: `200 messages (got ${run.state.handled.length})`,
    timeoutMs: 5_000,
  });
  const latencies = run.state.handled.map(({ message, at }) =>
    at - published.get(new TextDecoder().decode(message.body))!
  ).sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
  for (const nsqd of nsq.nsqds) {
    const from = run.state.handled.filter((h) => h.message.nsqdAddress === nsqd.tcpAddress);
    assert.equal(from.length, 40, `served from ${nsqd.tcpAddress}`);
  }
  assert.ok(p99 < 1_500, `p99 publish to handler ${p99} ms`);
});

Deno.test("max_in_flight 1 with a backlog: a message's finish() returns before the next handler starts", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("flow_order");
  await nsq.publishMany(topic, Array.from({ length: 60 }, (_, n) => `${n}`));
  const held: NsqMessage[] = [];
  /** After max_in_flight is lowered to 1: "start <id>" and "finished <id>", in order. */
  const order: string[] = [];
  let lowered = false;
  let handled = 0;
  let insideFinish = false;
  let startedInsideFinish = 0;
  let mostInFlight = 0;
  const consumer: Consumer = new Consumer({
    topic,
    channel: CHANNEL,
    maxInFlight: 20,
    nsqdAddresses: [hostPort(nsq.nsqds[0]!)],
    lookupdUrls: [],
    log: QUIET,
    connection: PLAIN_CONNECTION,
    onMessage: (message) => {
      if (insideFinish) startedInsideFinish++;
      if (held.length < 20) {
        held.push(message);
        return;
      }
      if (lowered) {
        order.push(`start ${message.id}`);
        mostInFlight = Math.max(mostInFlight, consumer.inFlight);
      }
      // Answered after the handler returned, as an async handler's is.
      queueMicrotask(() => {
        insideFinish = true;
        message.finish();
        insideFinish = false;
        if (lowered) order.push(`finished ${message.id}`);
        handled++;
      });
    },
  });
  consumer.start();
  try {
    await waitFor(() => held.length === 20, { message: "20 handlers running" });
    // As in the test above: nsqd sends 20 more while this process does not
    // read, then max_in_flight drops to 1 and 19 of them wait in the backlog.
    for (const message of held) message.finish();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const until = performance.now() + 200;
    while (performance.now() < until) {
      // Blocks the event loop on purpose: nsqd's messages pile up unread.
    }
    consumer.setMaxInFlight(1);
    lowered = true;
    await waitFor(() => handled === 40, { message: `40 messages (got ${handled})` });
  } finally {
    await consumer.drain();
    await consumer.close();
  }
  assert.ok(mostInFlight > 1, `a backlog formed (most in flight: ${mostInFlight})`);
  assert.equal(startedInsideFinish, 0, "handlers started inside another message's finish()");
  for (let i = 0; i < order.length; i += 2) {
    const id = order[i]!.slice("start ".length);
    assert.deepEqual(order.slice(i, i + 2), [`start ${id}`, `finished ${id}`], `at ${i}`);
  }
});
