/**
 * The shared dedupe stores end to end, against real nsqd, nsqlookupd and
 * redis: daemons on several nsqd sharing one redis handle each event once;
 * the sqlite store remembers across a restart and a SIGKILL; a duplicate
 * arriving while its twin runs elsewhere is busy; a redis outage follows
 * `dedupe.on_store_error` and loses nothing.
 */

import assert from "node:assert/strict";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { deferred, type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { type RedisServer, startRedis } from "../helpers/redis_server.ts";

const CHANNEL = "work";

interface Event {
  readonly event_id: string;
}

const events = (count: number, prefix: string): string[] =>
  Array.from({ length: count }, (_, i) => JSON.stringify({ event_id: `${prefix}${i}` }));

/** A config for one in-process daemon: its NSQ sources, dedupe section and entry settings. */
function yamlFor(options: {
  readonly nsq: { lookupd?: string; nsqds?: readonly string[]; publish: string };
  readonly topic: string;
  readonly dedupe: Record<string, unknown>;
  readonly settings?: Record<string, unknown>;
}): string {
  const { nsq, topic, dedupe, settings = {} } = options;
  const entry = { topic, channel: CHANNEL, worker: "test/worker", ...settings };
  return JSON.stringify({
    nsq: {
      ...(nsq.lookupd ? { lookupd_http_addresses: [nsq.lookupd] } : {}),
      ...(nsq.nsqds ? { nsqd_tcp_addresses: nsq.nsqds } : {}),
      publish_nsqd_tcp_address: nsq.publish,
    },
    defaults: { requeue_delay: "10ms", max_requeue_delay: "50ms" },
    dedupe,
    http: { listen: null },
    shutdown_timeout: "5s",
    workers: [entry],
  });
}

function stats(daemon: InProcessDaemon) {
  return daemon.supervisor.entries[0]!.stats.snapshot();
}

/** Every nsqd of the cluster holds nothing for the channel: no depth, in flight or deferred. */
async function drained(nsq: NsqCluster, topic: string): Promise<boolean> {
  for (let i = 0; i < nsq.nsqds.length; i++) {
    const channel = await nsq.channel(topic, CHANNEL, i);
    if (channel === null) continue;
    if (channel.depth + channel.in_flight_count + channel.deferred_count > 0) return false;
  }
  return true;
}

Deno.test("redis: two daemons on two nsqd, every event published to both: each handled exactly once", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  await using redis = await startRedis();
  const topic = uniqueTopic("xhost");
  for (let i = 0; i < 2; i++) await nsq.createChannel(topic, CHANNEL, i);
  const handledBy = new Map<string, string[]>();
  const worker = (name: string): WorkerDefinition => ({
    dedupeKey: (body: Event) => body.event_id,
    async handle(body: Event) {
      handledBy.set(body.event_id, [...handledBy.get(body.event_id) ?? [], name]);
      // A little work, so that both daemons get their share.
      await new Promise((resolve) => setTimeout(resolve, 2));
    },
  });
  const yaml = yamlFor({
    nsq: { lookupd: nsq.lookupd!.httpUrl, publish: nsq.nsqds[0]!.tcpAddress },
    topic,
    dedupe: { store: redis.url },
    settings: { max_in_flight: 8, requeue_delay: "1s", max_requeue_delay: "2s" },
  });
  await using a = await startInProcess({ yaml, workers: { "test/worker": worker("a") } });
  await using b = await startInProcess({ yaml, workers: { "test/worker": worker("b") } });
  await waitFor(
    () => [a, b].every((d) => d.supervisor.entries[0]!.consumer.status().connected.length === 2),
    {
      message: "both daemons connected to both nsqd",
    },
  );

  const sent = events(150, "e");
  await Promise.all([nsq.publishMany(topic, sent, 0), nsq.publishMany(topic, sent, 1)]);

  const answered = () =>
    [a, b].reduce((sum, d) => sum + stats(d).outcomes.finish + stats(d).outcomes.duplicate, 0);
  await waitFor(() => answered() === 300, {
    timeoutMs: 20_000,
    message: "all 300 deliveries finished or found duplicate",
  });
  await waitFor(() => drained(nsq, topic), { message: "both nsqd drained" });

  assert.equal(handledBy.size, 150);
  assert.deepEqual([...handledBy].filter(([, by]) => by.length !== 1), []);
  const byA = [...handledBy.values()].filter(([by]) => by === "a").length;
  assert.ok(byA > 0 && byA < 150, `a handled ${byA}, b ${150 - byA}`);
  assert.equal(stats(a).outcomes.finish + stats(b).outcomes.finish, 150);
  assert.equal(stats(a).storeFailures + stats(b).storeFailures, 0);
});

for (const kind of ["redis", "sqlite"] as const) {
  Deno.test(`${kind}: a duplicate arriving while its twin runs on the other daemon is busy; if the twin fails, it runs`, async () => {
    await using nsq = await startNsq({ nsqds: 2 });
    await using dir = await TempDir.create();
    await using redis = kind === "redis" ? await startRedis() : null;
    // Two daemons on one host share the sqlite file; across hosts, redis.
    const store = redis?.url ?? `sqlite:${dir.join("dedupe.db")}`;
    const topic = uniqueTopic(`busy_${kind}`);
    const firstRun = deferred();
    const failFirst = deferred();
    let running = 0;
    let mostAtOnce = 0;
    const runs: string[] = [];
    const worker = (name: string): WorkerDefinition => ({
      dedupeKey: (body: Event) => body.event_id,
      async handle() {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        runs.push(name);
        try {
          if (name === "a") {
            firstRun.resolve();
            await failFirst.promise;
            throw new Error("a fails on purpose");
          }
        } finally {
          running--;
        }
      },
    });
    // Each daemon reads one nsqd, so the test knows which one gets which copy.
    const config = (i: number, settings: Record<string, unknown>) =>
      yamlFor({
        nsq: { nsqds: [nsq.nsqds[i]!.tcpAddress], publish: nsq.nsqds[i]!.tcpAddress },
        topic,
        dedupe: { store },
        settings: { requeue_delay: "1s", max_requeue_delay: "2s", ...settings },
      });
    await using a = await startInProcess({
      yaml: config(0, { max_attempts: 1, dead_letter_topic: null }),
      workers: { "test/worker": worker("a") },
    });
    await using b = await startInProcess({
      yaml: config(1, {}),
      workers: { "test/worker": worker("b") },
    });

    const body = JSON.stringify({ event_id: "twin" });
    await nsq.publish(topic, body, 0);
    await firstRun.promise;
    await nsq.publish(topic, body, 1);
    await waitFor(() => stats(b).outcomes.busy >= 1, { message: "b's copy busy" });
    assert.deepEqual(runs, ["a"]);

    failFirst.resolve();
    await waitFor(() => stats(b).outcomes.finish === 1, {
      timeoutMs: 15_000,
      message: "b's copy handled once a's failed",
    });
    assert.deepEqual(runs, ["a", "b"]);
    assert.equal(mostAtOnce, 1);
    assert.equal(stats(a).outcomes.dead, 1);
    await waitFor(() => drained(nsq, topic), { message: "both nsqd drained" });
  });
}

Deno.test("sqlite: events handled before a restart are duplicates after it", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("sqlite_restart");
  const handled: string[] = [];
  const workers = {
    "test/worker": {
      dedupeKey: (body: Event) => body.event_id,
      handle: (body: Event) => void handled.push(body.event_id),
    },
  };
  const yaml = yamlFor({
    nsq: { nsqds: [nsq.nsqds[0]!.tcpAddress], publish: nsq.nsqds[0]!.tcpAddress },
    topic,
    dedupe: { store: `sqlite:${dir.join("dedupe.db")}` },
    settings: { max_in_flight: 20 },
  });
  const sent = events(60, "r");

  const first = await startInProcess({ yaml, workers });
  try {
    await nsq.publishMany(topic, sent);
    await waitFor(() => stats(first).outcomes.finish === 60, { message: "60 handled" });
  } finally {
    await first.shutdown();
  }

  await using second = await startInProcess({ yaml, workers });
  await nsq.publishMany(topic, sent);
  await waitFor(() => stats(second).outcomes.duplicate === 60, {
    message: "all 60 republished events found duplicate",
  });
  assert.equal(handled.length, 60);
  assert.equal(stats(second).outcomes.finish, 0);
  await waitFor(() => drained(nsq, topic), { message: "drained" });
});

Deno.test("sqlite: events finished before a SIGKILL are duplicates after the restart", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("sqlite_kill");
  const config = {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    dedupe: { store: `sqlite:${dir.join("dedupe.db")}` },
    log: { level: "info", format: "json" },
    http: { listen: null },
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "dedupe_record",
      options: { out: dir.join("out") },
    }],
  };
  const sent = Array.from({ length: 40 }, (_, i) => `k${i}`);
  const connected = (line: string) => line.includes('"connected to nsqd"');

  {
    await using daemon = await startDaemon(dir, config);
    await daemon.waitForLine(connected);
    await nsq.publishMany(topic, sent);
    // FIN follows the done mark's commit: once nsqd has every FIN, every mark is on disk.
    await waitFor(async () => {
      const channel = await nsq.channel(topic, CHANNEL);
      return channel?.message_count === 40 && channel.depth === 0 && channel.in_flight_count === 0;
    }, { message: "all 40 finished" });
    daemon.signal("SIGKILL");
    assert.equal((await daemon.status).signal, "SIGKILL");
  }
  assert.equal((await dir.readLines("out")).length, 40);

  await using again: CliProcess = await startDaemon(dir, config);
  await again.waitForLine(connected);
  await nsq.publishMany(topic, sent);
  await again.waitForLines((line) => line.includes('"duplicate: already handled"'), 40);
  assert.deepEqual((await dir.readLines("out")).sort(), [...sent].sort());
});

/**
 * A daemon with the redis store, whose handler takes a few milliseconds; kills
 * redis once a third of `count` events are handled.
 */
async function redisOutage(onStoreError: "retry" | "process") {
  const nsq = await startNsq();
  const redis = await startRedis();
  const topic = uniqueTopic(`outage_${onStoreError}`);
  const handled = new Map<string, number>();
  // Past the first 20, handlers wait until redis is down, so that the rest
  // of the events meet the outage however fast this machine is.
  const outage = Promise.withResolvers<void>();
  const daemon = await startInProcess({
    yaml: yamlFor({
      nsq: { nsqds: [nsq.nsqds[0]!.tcpAddress], publish: nsq.nsqds[0]!.tcpAddress },
      topic,
      dedupe: { store: redis.url, on_store_error: onStoreError },
      settings: { max_in_flight: 5 },
    }),
    workers: {
      "test/worker": {
        dedupeKey: (body: Event) => body.event_id,
        async handle(body: Event) {
          if (handled.size >= 20) await outage.promise;
          handled.set(body.event_id, (handled.get(body.event_id) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 5));
        },
      },
    },
  });
  const sent = events(60, "o");
  await nsq.publishMany(topic, sent);
  await waitFor(() => handled.size >= 20, { message: "a third handled" });
  await redis.kill();
  outage.resolve();
  return {
    nsq,
    redis,
    topic,
    handled,
    daemon,
    async [Symbol.asyncDispose]() {
      await daemon.shutdown();
      await redis.close();
      await nsq.close();
    },
  };
}

function assertEachOnce(handled: Map<string, number>, count: number, prefix: string): void {
  const expected = events(count, prefix).map((e) => (JSON.parse(e) as Event).event_id);
  assert.deepEqual([...handled.keys()].filter((k) => k.startsWith(prefix)).sort(), expected.sort());
  assert.deepEqual([...handled].filter(([, n]) => n !== 1), []);
}

Deno.test("redis killed mid-run, on_store_error retry: messages wait for redis, nothing lost", async () => {
  await using run = await redisOutage("retry");
  const { daemon, handled, nsq, redis, topic } = run;
  await waitFor(() => stats(daemon).storeFailures >= 10, { message: "claims failing" });
  const whileDown = handled.size;
  assert.ok(whileDown < 60, "events keep waiting while redis is down");
  assert.equal(daemon.supervisor.entries[0]!.state, "running");
  assert.ok(daemon.logs.some((r) => r.msg === "dedupe store failed; requeued until it answers"));
  assert.ok(daemon.logs.some((r) => r.msg === "redis dedupe store unreachable; reconnecting"));

  await redis.start();
  await waitFor(() => handled.size === 60, { timeoutMs: 15_000, message: "all 60 handled" });
  await waitFor(() => drained(nsq, topic), { message: "drained" });
  assertEachOnce(handled, 60, "o");
  assert.equal(stats(daemon).dedupeBypassed, 0);
  assert.equal(stats(daemon).outcomes.finish, 60);
});

Deno.test("redis killed mid-run, on_store_error process: handled without dedupe, logged and counted", async () => {
  await using run = await redisOutage("process");
  const { daemon, handled, nsq, redis: server, topic } = run;
  await waitFor(() => handled.size === 60, { message: "all 60 handled, redis or not" });
  await waitFor(() => drained(nsq, topic), { message: "drained" });
  assertEachOnce(handled, 60, "o");
  const bypassed = stats(daemon).dedupeBypassed;
  assert.ok(bypassed > 0 && bypassed <= 40, `${bypassed} bypassed`);
  assert.equal(stats(daemon).storeFailures, bypassed);
  const warning = daemon.logs.find((r) => r.msg === "dedupe store failed; handled without dedupe");
  assert.equal(warning?.level, "warning");
  assert.equal(warning?.dedupe, "bypassed");
  assert.match(String(warning?.store_error), /unreachable/);

  await restartAndRecover(server, daemon, nsq, topic, handled);
  assert.equal(stats(daemon).dedupeBypassed, bypassed);
});

/** Brings redis back and shows that new events are deduplicated through it again. */
async function restartAndRecover(
  redis: RedisServer,
  daemon: InProcessDaemon,
  nsq: NsqCluster,
  topic: string,
  handled: Map<string, number>,
): Promise<void> {
  await redis.start();
  await waitFor(() => daemon.logs.some((r) => r.msg === "redis dedupe store reconnected"), {
    message: "the store reconnected",
  });
  const again = events(10, "p");
  await nsq.publishMany(topic, [...again, ...again]);
  await waitFor(() => stats(daemon).outcomes.duplicate === 10, {
    timeoutMs: 15_000,
    message: "the second copies found duplicate",
  });
  assertEachOnce(handled, 10, "p");
}
