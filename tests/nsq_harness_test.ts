import assert from "node:assert/strict";
import { startNsq } from "./helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "./helpers/nsq/unique_topic.ts";
import { waitFor } from "./helpers/wait_for.ts";

const decoder = new TextDecoder();
const texts = (bodies: Uint8Array[]) => bodies.map((body) => decoder.decode(body));

async function ping(httpUrl: string): Promise<string> {
  const response = await fetch(`${httpUrl}/ping`);
  return await response.text();
}

async function lookupProducers(lookupdUrl: string, topic: string): Promise<number[]> {
  const response = await fetch(`${lookupdUrl}/lookup?topic=${topic}`);
  if (response.status === 404) {
    await response.body?.cancel();
    return [];
  }
  const { producers } = await response.json() as { producers: { tcp_port: number }[] };
  return producers.map((p) => p.tcp_port).sort((a, b) => a - b);
}

Deno.test("startNsq runs nsqlookupd and nsqd on loopback and answers ping", async () => {
  await using nsq = await startNsq();
  assert.ok(nsq.lookupd);
  assert.match(nsq.lookupd.tcpAddress, /^127\.0\.0\.1:\d+$/);
  assert.equal(await ping(nsq.lookupd.httpUrl), "OK");
  assert.equal(nsq.nsqds.length, 1);
  const [nsqd] = nsq.nsqds;
  assert.ok(nsqd);
  assert.equal(nsqd.tcpAddress, `127.0.0.1:${nsqd.tcpPort}`);
  assert.equal(nsqd.httpUrl, `http://127.0.0.1:${nsqd.httpPort}`);
  assert.ok(nsqd.running);
  assert.equal(await ping(nsqd.httpUrl), "OK");
});

Deno.test("publish and publishMany show up in topic stats", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("stats");
  await nsq.publish(topic, "one");
  await nsq.publishMany(topic, ["two", new TextEncoder().encode("three")]);
  assert.deepEqual(await nsq.topic(topic), {
    topic_name: topic,
    message_count: 3,
    depth: 3,
    channels: [],
  });
  assert.equal(await nsq.topic("t_missing"), null);
});

Deno.test("readTopic returns the published bodies in order and finishes them", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("read");
  await nsq.publishMany(topic, ["a", "b", "c"]);
  assert.deepEqual(texts(await nsq.readTopic(topic, 3, { channel: "reader" })), ["a", "b", "c"]);

  const channel = await nsq.channel(topic, "reader");
  assert.ok(channel);
  assert.equal(channel.message_count, 3);
  assert.equal(channel.depth, 0);
  assert.equal(channel.in_flight_count, 0);
  assert.equal(channel.requeue_count, 0);
  assert.equal(channel.timeout_count, 0);
});

Deno.test("publishMany and readTopic handle batches beyond nsqd's limits", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("bulk");
  // 6 MB in total: more than one 5 MiB /mpub body, and more than one RDY 2500 batch.
  const bodies = Array.from({ length: 6000 }, (_, i) => `${i}`.padEnd(1000, "."));
  await nsq.publishMany(topic, bodies);
  assert.equal((await nsq.topic(topic))?.depth, bodies.length);

  // Leaves the rest in the channel, none requeued, so exactly `count` were delivered.
  assert.deepEqual(texts(await nsq.readTopic(topic, 5100)), bodies.slice(0, 5100));
  const channel = await nsq.channel(topic, "nsq_harness");
  assert.equal(channel?.in_flight_count, 0);
  assert.equal(channel?.requeue_count, 0);
  await waitFor(async () => (await nsq.channel(topic, "nsq_harness"))?.depth === 900, {
    message: "the channel to hold the 900 unread messages",
  });
});

Deno.test("readTopic fails with a count when too few messages arrive", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("short");
  await nsq.publish(topic, "only");
  await assert.rejects(
    nsq.readTopic(topic, 2, { timeoutMs: 300 }),
    /only 1 of 2 messages arrived within 300 ms/,
  );
});

Deno.test("publish reports nsqd's error", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await assert.rejects(nsq.publish("bad topic!", "x"), /answered 400: .*INVALID_TOPIC/);
});

Deno.test("two nsqds both register a topic with nsqlookupd", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  assert.ok(nsq.lookupd);
  const lookupdUrl = nsq.lookupd.httpUrl;
  const topic = uniqueTopic("lookup");
  await nsq.createTopic(topic, 0);
  await nsq.createTopic(topic, 1);
  const expected = nsq.nsqds.map((nsqd) => nsqd.tcpPort).sort((a, b) => a - b);
  await waitFor(
    async () => (await lookupProducers(lookupdUrl, topic)).join() === expected.join(),
    { message: `nsqlookupd to list both nsqds for ${topic}` },
  );
});

Deno.test("nsqlookupd restarts on the same ports", async () => {
  await using nsq = await startNsq();
  const lookupd = nsq.lookupd;
  assert.ok(lookupd);
  const { tcpAddress, httpUrl } = lookupd;
  await lookupd.stop();
  assert.equal(lookupd.running, false);
  await lookupd.start();
  assert.equal(lookupd.tcpAddress, tcpAddress);
  assert.equal(await ping(httpUrl), "OK");
});

Deno.test("createChannel makes a channel that collects later messages", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("channel");
  await nsq.createChannel(topic, "workers");
  await nsq.publish(topic, "x");
  // The topic hands messages to its channels asynchronously, after /pub answered.
  await waitFor(async () => (await nsq.channel(topic, "workers"))?.depth === 1, {
    message: "the channel to hold the message",
  });
  assert.equal(await nsq.channel(topic, "missing"), null);
});

Deno.test("an nsqd restarted after stop keeps its ports and un-consumed messages", async () => {
  await using nsq = await startNsq();
  const nsqd = nsq.nsqds[0];
  assert.ok(nsqd);
  const topic = uniqueTopic("restart");
  await nsq.createChannel(topic, "workers");
  await nsq.publishMany(topic, ["1", "2", "3"]);
  const unread = uniqueTopic("restart_unread");
  await nsq.publishMany(unread, ["x", "y"]);
  const { tcpAddress, httpUrl } = nsqd;

  await nsqd.stop();
  assert.equal(nsqd.running, false);
  await assert.rejects(fetch(`${httpUrl}/ping`));
  await nsqd.stop();

  await nsqd.start();
  assert.ok(nsqd.running);
  assert.equal(nsqd.tcpAddress, tcpAddress);
  assert.equal(nsqd.httpUrl, httpUrl);
  assert.equal((await nsq.channel(topic, "workers"))?.depth, 3);
  assert.equal((await nsq.topic(unread))?.depth, 2);
  assert.deepEqual(texts(await nsq.readTopic(topic, 3, { channel: "workers" })), ["1", "2", "3"]);
  await assert.rejects(nsqd.start(), /already running/);
});

Deno.test("kill ends nsqd at once and start brings it back", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0];
  assert.ok(nsqd);
  const topic = uniqueTopic("kill");
  await nsq.createTopic(topic);
  await nsq.publish(topic, "in memory only");
  await nsqd.kill();
  assert.equal(nsqd.running, false);
  await assert.rejects(fetch(`${nsqd.httpUrl}/ping`));
  await nsqd.kill();

  await nsqd.start();
  assert.equal(await ping(nsqd.httpUrl), "OK");
  // The topic's metadata was persisted on creation, but SIGKILL gives nsqd no
  // chance to write its in-memory queue to disk.
  assert.equal((await nsq.topic(topic))?.depth, 0);
});

Deno.test("nsqdArgs reach every nsqd and lookupd: false runs none", async () => {
  await using nsq = await startNsq({ nsqds: 2, lookupd: false, nsqdArgs: ["--msg-timeout=2s"] });
  assert.equal(nsq.lookupd, null);
  for (const nsqd of nsq.nsqds) {
    const response = await fetch(`${nsqd.httpUrl}/config/msg_timeout`);
    assert.equal(await response.json(), 2_000_000_000);
    const lookupds = await fetch(`${nsqd.httpUrl}/config/nsqlookupd_tcp_addresses`);
    assert.deepEqual(await lookupds.json(), []);
  }
  await assert.rejects(nsq.publish(uniqueTopic(), "x", 2), RangeError);
});

Deno.test("close stops every process, removes the data dirs and is idempotent", async () => {
  const nsq = await startNsq({ nsqds: 2 });
  const dataDirs = nsq.nsqds.map((nsqd) => nsqd.dataDir);
  await Promise.all([nsq.close(), nsq.close()]);
  await nsq.close();
  assert.ok(nsq.nsqds.every((nsqd) => !nsqd.running));
  assert.equal(nsq.lookupd?.running, false);
  for (const dir of dataDirs) await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
});

Deno.test("startNsq rejects a bad nsqd flag with the process output", async () => {
  await assert.rejects(
    startNsq({ nsqdArgs: ["--no-such-flag"] }),
    (error: Error) => {
      assert.match(error.message, /^Cannot start nsqd 0: it exited with code \d+ before listening/);
      assert.match(error.message, /no-such-flag/);
      return true;
    },
  );
});

Deno.test("uniqueTopic makes distinct valid NSQ names", () => {
  const names = new Set(Array.from({ length: 100 }, () => uniqueTopic("x")));
  assert.equal(names.size, 100);
  const long = uniqueTopic("a b/c".repeat(30));
  assert.ok(long.length <= 64, long);
  assert.match(long, /^t_a_b_c[.a-zA-Z0-9_-]*$/);
  assert.match(uniqueTopic(), /^t_[0-9a-f]{12}$/);
});

Deno.test("waitFor resolves once the condition holds and times out with the message", async () => {
  let calls = 0;
  await waitFor(() => ++calls === 3, { intervalMs: 1 });
  assert.equal(calls, 3);
  await assert.rejects(
    waitFor(() => false, { timeoutMs: 50, message: "the impossible" }),
    /Timed out after 50 ms waiting for the impossible/,
  );
});
