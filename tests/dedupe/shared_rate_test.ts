/**
 * `rate_limit: { rate: 200/s, shared: true }` over three daemon processes
 * sharing a redis store, against real nsqd and redis: together they keep
 * within 10 % of the rate; with redis stopped each keeps the rate on its own
 * and says so, and says so again when redis is back.
 */
import assert from "node:assert/strict";
import { type CliProcess, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { startRedis } from "../helpers/redis_server.ts";
import {
  LEDGER_CHANNEL,
  ledgerConfig,
  readMarks,
  startConnected,
} from "../helpers/timed_ledger.ts";

const RATE = 200;

/** Handlers started in [from, from + ms), per process and in all. */
async function countIn(dir: TempDir, from: number, ms: number) {
  const within = (await readMarks(dir))
    .filter(({ what, at }) => what === "start" && at >= from && at < from + ms);
  return { total: within.length, byPid: Map.groupBy(within, ({ pid }) => pid) };
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - now())));
}

Deno.test("a shared rate_limit of 200/s over 3 processes: within 10 % together; without redis each keeps it alone", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using redis = await startRedis();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("shared_rate");
  await nsq.createChannel(topic, LEDGER_CHANNEL);
  await nsq.publishMany(topic, Array.from({ length: 5_000 }, (_, i) => `r ${i}`));
  // Handled without dedupe while redis is down: the rate is what is measured.
  const config = ledgerConfig(nsq, topic, dir, { store: redis.url, on_store_error: "process" }, {
    max_in_flight: 20,
    rate_limit: { rate: `${RATE}/s`, shared: true },
  });
  const daemons: CliProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) daemons.push(await startConnected(dir, config));
    // Shared: 7 s once all three take messages.
    const from = now() + 500;
    await sleepUntil(from + 7_000);
    const shared = await countIn(dir, from, 7_000);
    const rate = shared.total / 7;
    assert.ok(Math.abs(rate - RATE) <= RATE * 0.1, `together ${rate.toFixed(1)}/s for ${RATE}/s`);
    assert.equal(shared.byPid.size, 3, "all three took their part");

    await redis.stop();
    const fellBack = (line: string) =>
      line.includes("shared rate limit: redis cannot be reached; this process keeps the rate");
    await Promise.all(daemons.map((daemon) => daemon.waitForLine(fellBack)));
    const alone = now() + 300;
    await sleepUntil(alone + 2_000);
    const local = await countIn(dir, alone, 2_000);
    assert.equal(local.byPid.size, 3);
    for (const [pid, handled] of local.byPid) {
      const own = handled.length / 2;
      assert.ok(own <= RATE * 1.1, `${pid} alone took ${own}/s, within its own ${RATE}/s`);
    }
    assert.ok(local.total / 2 > RATE * 1.5, `${local.total / 2}/s: each process its own rate`);

    await redis.start();
    const back = (line: string) => line.includes("shared rate limit: redis answers again");
    await Promise.all(daemons.map((daemon) => daemon.waitForLine(back, { timeoutMs: 10_000 })));
  } finally {
    for (const daemon of daemons) await daemon[Symbol.asyncDispose]();
  }
});
