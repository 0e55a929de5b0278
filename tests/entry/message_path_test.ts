/**
 * The message path end to end, in process, against real nsqd/nsqlookupd:
 * every message outcome and the publishing API.
 */

import assert from "node:assert/strict";
import { PermanentError } from "../../src/mod.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { type Canary, openCanary } from "../helpers/canary.ts";
import { deferred, envelope, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const decoder = new TextDecoder();

function yamlFor(
  nsq: NsqCluster,
  topic: string,
  settings: Record<string, unknown> = {},
  extra = "",
): string {
  const entry = Object.entries({ topic, channel: "work", worker: "test/worker", ...settings })
    .map(([key, value]) => `    ${key}: ${JSON.stringify(value)}`).join("\n");
  return `
nsq:
  lookupd_http_addresses: [${nsq.lookupd!.httpUrl}]
  publish_nsqd_tcp_address: ${nsq.nsqds[0]!.tcpAddress}
defaults:
  requeue_delay: 10ms
  max_requeue_delay: 50ms
${extra}
workers:
  - ${entry.trimStart()}
`;
}

/** `yaml` with a publish_nsqd_tcp_address where nothing listens, and that port. */
function unreachablePublisher(yaml: string): [string, number] {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  return [
    yaml.replace(/publish_nsqd_tcp_address: .*/, `publish_nsqd_tcp_address: 127.0.0.1:${port}`),
    port,
  ];
}

Deno.test("N messages published are each handled once and finished", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("all");
  const bodies = Array.from({ length: 300 }, (_, i) => JSON.stringify({ n: i }));
  await nsq.publishMany(topic, bodies);
  const seen = new Map<number, number>();
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 25 }),
    workers: {
      "test/worker": {
        handle(body: { n: number }) {
          seen.set(body.n, (seen.get(body.n) ?? 0) + 1);
        },
      },
    },
  });
  await waitFor(() => seen.size === 300, { message: "all 300 handled" });
  await waitFor(async () => (await nsq.channel(topic, "work"))?.depth === 0);
  await daemon.shutdown();
  assert.deepEqual([...seen.values()].filter((n) => n !== 1), []);
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.in_flight_count, 0);
  assert.equal(channel?.requeue_count, 0);
  assert.equal(channel?.timeout_count, 0);
  assert.equal(daemon.supervisor.entries[0]!.stats.snapshot().outcomes.finish, 300);
  const durations = daemon.logs.filter((r) => r.msg === "finished").map((r) => r.duration_ms);
  assert.equal(durations.length, 300);
  const unrounded = durations.filter((d) => !/^\d+(\.\d{1,2})?$/.test(String(d)));
  assert.deepEqual(unrounded, [], "durations in log lines are rounded to 0.01 ms");
});

Deno.test("the same event published twice with a dedupeKey is handled once", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("dedupe");
  const handled: string[] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 1 }),
    workers: {
      "test/worker": {
        dedupeKey: (body: { event_id: string }) => body.event_id,
        handle(body: { event_id: string }) {
          handled.push(body.event_id);
        },
      },
    },
  });
  await nsq.publish(topic, JSON.stringify({ event_id: "e1" }));
  await nsq.publish(topic, JSON.stringify({ event_id: "e1" }));
  await nsq.publish(topic, JSON.stringify({ event_id: "e2" }));
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish + stats.snapshot().outcomes.duplicate === 3);
  assert.deepEqual(handled, ["e1", "e2"]);
  assert.equal(stats.snapshot().outcomes.duplicate, 1);
  await waitFor(async () => (await nsq.channel(topic, "work"))?.depth === 0);
});

Deno.test("a duplicate delivered while the first copy runs is busy, then a duplicate", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("busy");
  const release = deferred();
  let runs = 0;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 5, requeue_delay: "1s", max_requeue_delay: "1s" }),
    workers: {
      "test/worker": {
        dedupeKey: (body: { event_id: string }) => body.event_id,
        async handle() {
          runs++;
          await release.promise;
        },
      },
    },
  });
  const stats = daemon.supervisor.entries[0]!.stats;
  await nsq.publish(topic, JSON.stringify({ event_id: "same" }));
  await waitFor(() => runs === 1);
  await nsq.publish(topic, JSON.stringify({ event_id: "same" }));
  await waitFor(() => stats.snapshot().outcomes.busy >= 1, { message: "second copy busy" });
  release.resolve();
  await waitFor(() => stats.snapshot().outcomes.duplicate === 1, {
    message: "second copy finished as a duplicate",
  });
  assert.equal(runs, 1);
  assert.equal(stats.snapshot().outcomes.finish, 1);
});

Deno.test("a handler that always throws runs max_attempts times, then is dead-lettered", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("throws");
  await nsq.createChannel(`${topic}.dead`, "check");
  let calls = 0;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_attempts: 3 }),
    workers: {
      "test/worker": {
        handle() {
          calls++;
          throw new Error(`boom ${calls}`);
        },
      },
    },
  });
  await nsq.publish(topic, JSON.stringify({ n: 1 }));
  const [letter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
  const dead = envelope(letter!);
  assert.equal(calls, 3);
  assert.equal(dead.reason, "max_attempts");
  assert.equal(dead.error, "boom 3");
  assert.equal(dead.attempts, 3);
  assert.equal(dead.topic, topic);
  assert.equal(dead.channel, "work");
  assert.equal(dead.body, JSON.stringify({ n: 1 }));
  const outcomes = daemon.supervisor.entries[0]!.stats.snapshot().outcomes;
  assert.equal(outcomes.retry, 2);
  assert.equal(outcomes.dead, 1);
  await waitFor(async () => {
    const channel = await nsq.channel(topic, "work");
    return channel?.depth === 0 && channel.in_flight_count === 0 && channel.deferred_count === 0;
  });
});

Deno.test("decode errors, validate false and PermanentError go to the dead letter topic at once", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("dead");
  await nsq.createChannel(`${topic}.dead`, "check");
  const handled: unknown[] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_attempts: 5, max_in_flight: 1 }),
    workers: {
      "test/worker": {
        validate: (body: { ok?: boolean; permanent?: boolean }) => body.ok === true,
        handle(body: { permanent?: boolean }) {
          handled.push(body);
          if (body.permanent) throw new PermanentError("cannot ever work");
        },
      },
    },
  });
  await nsq.publish(topic, "not json");
  await nsq.publish(topic, new Uint8Array([0xff, 0xfe, 0x00]));
  await nsq.publish(topic, JSON.stringify({ ok: false }));
  await nsq.publish(topic, JSON.stringify({ ok: true, permanent: true }));
  const letters = (await nsq.readTopic(`${topic}.dead`, 4, { channel: "check" })).map(envelope);
  assert.deepEqual(letters.map((l) => [l.reason, l.attempts]), [
    ["decode", 1],
    ["decode", 1],
    ["validate", 1],
    ["permanent", 1],
  ]);
  assert.match(String(letters[0]!.error), /not JSON/);
  assert.equal(letters[1]!.body_encoding, "base64");
  assert.equal(letters[1]!.body, "//4A");
  assert.equal(letters[3]!.error, "cannot ever work");
  assert.equal(handled.length, 1);
  assert.equal(daemon.supervisor.entries[0]!.stats.snapshot().outcomes.retry, 0);
});

Deno.test("dead_letter_topic null: the message is logged, counted and finished", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("nodl");
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { dead_letter_topic: null }),
    workers: { "test/worker": { handle() {} } },
  });
  await nsq.publish(topic, "not json");
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.dead === 1);
  await waitFor(async () => (await nsq.channel(topic, "work"))?.depth === 0);
  const line = daemon.logs.find((r) => r.outcome === "dead");
  assert.equal(line?.level, "error");
  assert.equal(line?.reason, "decode");
  assert.equal(await nsq.topic(`${topic}.dead`), null);
});

Deno.test("a dead letter that cannot be published requeues the message instead", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("dlfail");
  const [yaml, port] = unreachablePublisher(yamlFor(nsq, topic));
  await using daemon = await startInProcess({ yaml, workers: { "test/worker": { handle() {} } } });
  await nsq.publish(topic, "not json");
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().deadLetterFailures >= 2, { timeoutMs: 15_000 });
  const channel = await nsq.channel(topic, "work");
  assert.ok(channel!.requeue_count >= 2, "requeued, not finished");
  assert.equal(channel!.message_count, 1);
  const line = daemon.logs.find((r) =>
    r.msg === "dead, but publishing the dead letter failed; requeued"
  );
  assert.match(String(line?.publish_error), new RegExp(`127.0.0.1:${port}`));
});

Deno.test("a dead letter that cannot be published: the handler runs max_attempts times only, requeues back off", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("dlloop");
  const [yaml, port] = unreachablePublisher(
    yamlFor(nsq, topic, { max_attempts: 2, requeue_delay: "100ms", max_requeue_delay: "10s" }),
  );
  let runs = 0;
  await using daemon = await startInProcess({
    yaml,
    workers: {
      "test/worker": {
        handle() {
          runs++;
          throw new Error(`fails ${runs}`);
        },
      },
    },
  });
  await nsq.publish(topic, "{}");
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().deadLetterFailures >= 4, {
    message: "four failed dead letter publishes",
    timeoutMs: 15_000,
  });
  const failures = daemon.logs.filter((r) =>
    r.msg === "dead, but publishing the dead letter failed; requeued"
  );
  assert.equal(runs, 2, "the handler ran max_attempts times, not once per dead letter retry");
  assert.deepEqual(failures.map((r) => r.level), failures.map(() => "error"));
  assert.match(String(failures[0]!.publish_error), new RegExp(`127.0.0.1:${port}`));
  assert.equal(failures[0]!.error, "fails 2");
  assert.match(String(failures[1]!.error), /attempt 3 is beyond max_attempts 2/);
  const delays = failures.map((r) => Number(r.delay_ms));
  for (let i = 1; i < delays.length; i++) {
    assert.ok(delays[i]! > delays[i - 1]!, `requeue delays grow: ${delays.join(", ")}`);
  }
  const channel = await nsq.channel(topic, "work");
  assert.equal(
    channel!.depth + channel!.in_flight_count + channel!.deferred_count,
    1,
    "the message is still in nsqd",
  );
});

Deno.test("a handler slower than nsqd's msg-timeout is touched and not redelivered", async () => {
  await using nsq = await startNsq({ nsqdArgs: ["--msg-timeout=1s"] });
  const topic = uniqueTopic("touch");
  let calls = 0;
  // The handler runs until a canary held without TOUCH has timed out
  // (tests/helpers/canary.ts): an untouched message would have too.
  let canary: Canary | null = null;
  const started = deferred();
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { timeout: "30s", max_in_flight: 1 }),
    workers: {
      "test/worker": {
        async handle(_body, ctx) {
          calls++;
          started.resolve();
          await waitFor(() => canary !== null && canary.timedOut(), {
            message: "the canary timed out",
            timeoutMs: 15_000,
          });
          assert.equal(ctx.signal.aborted, false);
        },
      },
    },
  });
  await nsq.publish(topic, "{}");
  await started.promise;
  await using opened = await openCanary(nsq, topic, "work");
  canary = opened;
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === 1, { timeoutMs: 15_000 });
  assert.equal(calls, 1);
  assert.ok(opened.held.length >= 1, "the canary went to the bare connection");
  assert.ok(opened.held.every((m) => decoder.decode(m.body) === "canary"));
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.timeout_count, 1, "only the canary timed out");
  assert.equal(channel?.requeue_count, 0);
});

Deno.test("a handler slower than timeout is aborted and retried", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("timeout");
  const signals: AbortSignal[] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { timeout: "200ms" }),
    workers: {
      "test/worker": {
        handle(_body, ctx) {
          signals.push(ctx.signal);
          if (ctx.message.attempts > 1) return;
          return new Promise((_, reject) => {
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          });
        },
      },
    },
  });
  await nsq.publish(topic, "{}");
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === 1);
  assert.equal(signals.length, 2);
  assert.equal(signals[0]!.aborted, true);
  assert.equal(stats.snapshot().outcomes.retry, 1);
  const retry = daemon.logs.find((r) => r.outcome === "retry");
  assert.match(String(retry?.error), /timed out after 200ms/);
});

Deno.test("ctx.publish, publishMany and publishDeferred reach nsqd, with topic_prefix", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("pub");
  const out = `${topic}.out`;
  await nsq.createChannel(`env.${out}`, "check");
  const yaml = yamlFor(nsq, topic, {}, "").replace("nsq:\n", "nsq:\n  topic_prefix: env.\n");
  await using _daemon = await startInProcess({
    yaml,
    workers: {
      "test/worker": {
        async handle(body: { n: number }, ctx) {
          await ctx.publish(out, { from: body.n });
          await ctx.publishMany(out, ["a", new TextEncoder().encode("b")]);
          await ctx.publishDeferred(out, "late", 300);
        },
      },
    },
  });
  await nsq.publish(`env.${topic}`, JSON.stringify({ n: 7 }));
  const bodies = (await nsq.readTopic(`env.${out}`, 4, { channel: "check" })).map((b) =>
    decoder.decode(b)
  );
  assert.deepEqual(bodies, [JSON.stringify({ from: 7 }), "a", "b", "late"]);
});

Deno.test("an entry whose setup() throws fails alone; the other entries run", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("iso");
  let handled = 0;
  const broken: WorkerDefinition = {
    setup() {
      throw new Error("no database");
    },
    handle() {},
  };
  const yaml = yamlFor(nsq, topic) +
    `  - topic: ${topic}\n    channel: broken\n    worker: test/broken\n`;
  await using daemon = await startInProcess({
    yaml,
    workers: { "test/worker": { handle: () => void handled++ }, "test/broken": broken },
  });
  await nsq.publish(topic, "{}");
  await waitFor(() => handled === 1);
  const [good, bad] = daemon.supervisor.entries;
  assert.equal(good!.state, "running");
  assert.equal(bad!.state, "failed");
  const readiness = daemon.supervisor.readiness();
  assert.equal(readiness.ready, false);
  assert.deepEqual(readiness.reasons, [`${topic}/broken: setup() failed: no database`]);
  const line = daemon.logs.find((r) => r.msg === "entry not started");
  assert.equal(line?.channel, "broken");
});

Deno.test("two nsqd behind one lookupd: both consumed, total RDY within max_in_flight", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  const topic = uniqueTopic("two");
  const count = 400;
  await nsq.publishMany(topic, Array.from({ length: count / 2 }, (_, i) => `{"n":${i}}`), 0);
  await nsq.publishMany(topic, Array.from({ length: count / 2 }, (_, i) => `{"n":${i}}`), 1);
  let handled = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 7 }),
    workers: {
      "test/worker": {
        async handle() {
          mostInFlight = Math.max(mostInFlight, ++inFlight);
          await new Promise((resolve) => setTimeout(resolve, 5));
          inFlight--;
          handled++;
        },
      },
    },
  });
  const readyCounts = async () => {
    const counts: number[] = [];
    for (const i of [0, 1]) {
      for (const client of (await nsq.channel(topic, "work", i))?.clients ?? []) {
        counts.push(client.ready_count);
      }
    }
    return counts;
  };
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  await waitFor(async () => {
    assert.ok(sum(await readyCounts()) <= 7, "total RDY above max_in_flight");
    assert.ok(daemon.supervisor.entries[0]!.stats.inFlight <= 7, "in flight above max_in_flight");
    return handled >= count;
  }, { message: `${count} handled`, intervalMs: 10, timeoutMs: 20_000 });
  assert.ok(mostInFlight <= 7, `${mostInFlight} handlers ran at once`);
  for (const i of [0, 1]) {
    await waitFor(async () => (await nsq.channel(topic, "work", i))?.message_count === count / 2);
  }
  // Idle, every connection holds its share and the remainder is not lost.
  await waitFor(async () => (await readyCounts()).sort().join("+") === "3+4");
  assert.equal(daemon.supervisor.readiness().ready, true);
});

Deno.test("two nsqd sharing a node-id: every distinct message is handled once, none lost as a duplicate", async () => {
  // nsqd's message ids are time + node-id + a per-millisecond sequence, so two
  // nsqd with one node-id hand out the same ids to different messages.
  await using nsq = await startNsq({ nsqds: 2, nsqdArgs: ["--node-id=7"] });
  const topic = uniqueTopic("nodeid");
  const handled = new Map<string, number>();
  const idsSeen = new Map<string, number>();
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 50 }),
    workers: {
      "test/worker": {
        decode: "text",
        handle(body: string, ctx) {
          handled.set(body, (handled.get(body) ?? 0) + 1);
          idsSeen.set(ctx.message.id, (idsSeen.get(ctx.message.id) ?? 0) + 1);
        },
      },
    },
  });
  // Parallel publishers to both nsqd, round after round, so that both mint
  // ids in the same milliseconds.
  const rounds = 20;
  const perRound = 100;
  for (let round = 0; round < rounds; round++) {
    await Promise.all([0, 1].map((i) =>
      nsq.publishMany(
        topic,
        Array.from({ length: perRound }, (_, n) => `${i}.${round}.${n}`),
        i,
      )
    ));
  }
  const total = 2 * rounds * perRound;
  const outcomes = () => daemon.supervisor.entries[0]!.stats.snapshot().outcomes;
  await waitFor(() => outcomes().finish + outcomes().duplicate >= total, {
    message: `${total} messages answered`,
    timeoutMs: 20_000,
  });
  const shared = [...idsSeen.values()].filter((n) => n > 1).length;
  assert.equal(outcomes().duplicate, 0, "no distinct message taken for a duplicate");
  assert.equal(handled.size, total);
  assert.deepEqual([...handled.values()].filter((n) => n !== 1), []);
  assert.ok(shared > 0, "the two nsqd did hand out the same ids (else this test proves nothing)");
});
