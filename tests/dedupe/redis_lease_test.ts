/**
 * `key_concurrency` across daemon processes sharing a redis store, against
 * real nsqd and redis: no two handlers of one key overlap in any process, and
 * a key held by a process killed with SIGKILL is free again within the lease
 * time, and not before its lease could have lapsed.
 */
import assert from "node:assert/strict";
import { ORDER_LEASE_MS, RedisKeyLeases } from "../../src/dedupe/redis_lease.ts";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import { type CliProcess, TempDir } from "../helpers/daemon_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { startRedis } from "../helpers/redis_server.ts";
import { waitFor } from "../helpers/wait_for.ts";
import {
  LEDGER_CHANNEL,
  ledgerConfig,
  readMarks,
  startConnected,
} from "../helpers/timed_ledger.ts";

/** A daemon process on redis, one handler at a time per key, each `sleepMs` long. */
function keyed(
  nsq: NsqCluster,
  redisUrl: string,
  topic: string,
  dir: TempDir,
  sleepMs: number,
  maxInFlight = 20,
): Promise<CliProcess> {
  const entry = { max_in_flight: maxInFlight, key_concurrency: 1 };
  return startConnected(dir, ledgerConfig(nsq, topic, dir, { store: redisUrl }, entry, sleepMs));
}

Deno.test("key_concurrency 1 over 3 daemon processes on redis: no two handlers of one key overlap anywhere", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using redis = await startRedis();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("leased");
  await nsq.createChannel(topic, LEDGER_CHANNEL);
  const daemons: CliProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) daemons.push(await keyed(nsq, redis.url, topic, dir, 3));
    const bodies = Array.from({ length: 900 }, (_, seq) => `k${seq % 20} ${seq}`);
    await nsq.publishMany(topic, bodies);
    await waitFor(
      async () => (await readMarks(dir)).filter((m) => m.what === "end").length >= 900,
      {
        timeoutMs: 60_000,
        message: "900 handlers ended",
      },
    );
    const all = await readMarks(dir);
    const pids = new Set(all.map((mark) => mark.pid));
    assert.equal(pids.size, 3, "every process handled some");
    const runs = new Map<string, { key: string; start: number; end: number; pid: number }>();
    for (const mark of all) {
      const id = `${mark.pid} ${mark.seq}`;
      const run = runs.get(id) ?? { key: mark.key, start: NaN, end: NaN, pid: mark.pid };
      run[mark.what] = mark.at;
      runs.set(id, run);
    }
    assert.equal(runs.size, 900, "each message handled once");
    let crossings = 0;
    for (const [key, keyRuns] of Map.groupBy(runs.values(), (run) => run.key)) {
      keyRuns.sort((a, b) => a.start - b.start);
      for (let i = 1; i < keyRuns.length; i++) {
        const [before, after] = [keyRuns[i - 1]!, keyRuns[i]!];
        assert.ok(
          after.start >= before.end,
          `${key}: a handler started in ${after.pid} ${before.end - after.start} ms before ` +
            `the one in ${before.pid} ended`,
        );
        if (before.pid !== after.pid) crossings++;
      }
    }
    assert.ok(crossings > 20, `keys passed from process to process ${crossings} times`);
  } finally {
    for (const daemon of daemons) await daemon[Symbol.asyncDispose]();
  }
});

Deno.test("a key whose holder died by SIGKILL is free within the lease time, not before its lease lapsed", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using redis = await startRedis();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("holder");
  await nsq.createChannel(topic, LEDGER_CHANNEL);
  // One message at a time: with k 0 running there, nsqd sends k 1 to the second.
  await using first = await keyed(nsq, redis.url, topic, dir, 0, 1);
  // The holder's handler would run for a minute.
  await nsq.publish(topic, "k 0 60000");
  await waitFor(async () => (await readMarks(dir)).some((m) => m.what === "start"), {
    message: "the first process runs k",
  });
  const holder = (await readMarks(dir))[0]!.pid;
  await using _second = await keyed(nsq, redis.url, topic, dir, 0);
  await nsq.publish(topic, "k 1");
  await waitFor(async () => (await nsq.channel(topic, LEDGER_CHANNEL))?.in_flight_count === 2, {
    message: "k 1 delivered, waiting for k",
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    (await readMarks(dir)).filter((m) => m.pid !== holder),
    [],
    "nothing else ran k",
  );

  const killedAt = performance.timeOrigin + performance.now();
  first.signal("SIGKILL");
  await first.status;
  await waitFor(async () => (await readMarks(dir)).some((m) => m.pid !== holder), {
    timeoutMs: ORDER_LEASE_MS + 5_000,
    message: "k running in the second process",
  });
  const freedAfter = (await readMarks(dir)).find((m) => m.pid !== holder)!.at - killedAt;
  // Renewed every third of the lease: it lapses between two and three thirds after the kill.
  assert.ok(freedAfter <= ORDER_LEASE_MS + 1_000, `k free ${freedAfter} ms after the kill`);
  assert.ok(freedAfter >= ORDER_LEASE_MS * 2 / 3 - 200, `k free only ${freedAfter} ms after`);
});

Deno.test("redis order leases: at most N places per key, owned by their token", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 60_000 });
  try {
    const leases = new RedisKeyLeases(store.redis, "t/c", 300);
    const a = await leases.acquire("k", 2);
    const b = await leases.acquire("k", 2);
    assert.ok(a !== null && b !== null && a.place !== b.place, "two places of two");
    assert.equal(await leases.acquire("k", 2), null, "no third");
    assert.ok(await leases.renew(a));
    await leases.release(a);
    const c = await leases.acquire("k", 2);
    assert.equal(c?.place, a.place, "a released place is taken again");
    await leases.release(a);
    assert.equal(await leases.acquire("k", 2), null, "a stale token frees nothing");
    await waitFor(async () => await leases.acquire("k", 1) !== null, {
      message: "the one place of k lapsed",
    });
    assert.equal(await leases.renew(b), false, "a lapsed lease is lost");
  } finally {
    await store.close();
  }
});
