/**
 * Load (soak): `nsqworker run` consumes a steady publish rate for minutes
 * while its resident memory (VmRSS of /proc/<pid>/status) and nsqd's queue
 * are sampled. Memory must stay flat, the queue bounded, nothing lost; the
 * publish-to-handler latency is reported.
 *
 * The memory dedupe store grows until it holds `capacity` keys; that is
 * set to 20 000 here (default 100 000) so that it is full after 20 s and
 * the rest of the run shows the steady state. "Flat" is the benchmark's
 * rule: the peak of the later half of the steady state is at most 10 % or
 * 10 MiB above the peak of the earlier half.
 *
 * SOAK_RATE (messages/s, default 1000: the rate of the benchmark's latency
 * section) and SOAK_SECONDS (default 180) change the run.
 */

import assert from "node:assert/strict";
import { startDaemon, TempDir } from "../tests/helpers/daemon_process.ts";
import { startNsq } from "../tests/helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../tests/helpers/nsq/unique_topic.ts";
import { waitFor } from "../tests/helpers/wait_for.ts";
import { Ledger, makeIds, readLedgerFile, reportFigures } from "../tests/reliability/ledger.ts";
import { startPublisher } from "../tests/reliability/paced_publisher.ts";

const RATE = Number(Deno.env.get("SOAK_RATE") ?? 1_000);
const SECONDS = Number(Deno.env.get("SOAK_SECONDS") ?? 180);
const SAMPLE_MS = 5_000;
const CHANNEL = "load";
const DEDUPE_CAPACITY = 20_000;

/** VmRSS of `pid`. Deno reads nothing under /proc without --allow-all, so cat does. */
async function rssMiB(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(new TextDecoder().decode(stdout))?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

Deno.test(`${RATE} messages/s for ${SECONDS} s: flat memory, bounded queue, nothing lost`, async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("load");
  await nsq.createChannel(topic, CHANNEL);
  const out = dir.join("ledger.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: null },
    dedupe: { capacity: DEDUPE_CAPACITY },
    workers: [{ topic, channel: CHANNEL, worker: "ledger", max_in_flight: 50, options: { out } }],
  });
  const pid = JSON.parse(await daemon.waitForLine((l) => l.includes('"msg":"ledger: ready"'))).pid;
  await daemon.waitForLine((l) => l.includes('"msg":"connected to nsqd"'));

  const ledger = new Ledger();
  const total = RATE * SECONDS;
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("p", total),
    ledger,
    ratePerSec: RATE,
    batch: Math.max(1, Math.round(RATE / 100)),
    body: (id) => `${id} ${Date.now()}`,
  });
  const samples: { second: number; rssMiB: number; backlog: number }[] = [];
  const started = performance.now();
  let finished = false;
  publisher.done.then(() => finished = true);
  while (!finished) {
    const channel = await nsq.channel(topic, CHANNEL);
    samples.push({
      second: Math.round((performance.now() - started) / 1000),
      rssMiB: await rssMiB(pid),
      backlog: (channel?.depth ?? 0) + (channel?.in_flight_count ?? 0),
    });
    await Promise.race([publisher.done, new Promise((r) => setTimeout(r, SAMPLE_MS))]);
  }
  await waitFor(async () => (await readLedgerFile(out)).length >= total, {
    timeoutMs: 60_000,
    message: "every message handled",
  });
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);

  const lines = await readLedgerFile(out);
  for (const line of lines) ledger.handled(line.id);
  const latencies = lines.map((l) => l.receivedMs - l.publishedMs!).sort((a, b) => a - b);
  // Warm-up: the dedupe store filling, then 10 s more for the JIT and buffers.
  const warmupSeconds = DEDUPE_CAPACITY / RATE + 10;
  const steady = samples.filter((s) => s.second >= warmupSeconds);
  const half = Math.floor(steady.length / 2);
  const earlier = Math.max(...steady.slice(0, half).map((s) => s.rssMiB));
  const later = Math.max(...steady.slice(half).map((s) => s.rssMiB));
  const figures = {
    ...ledger.figures(),
    rate_per_sec: RATE,
    seconds: SECONDS,
    rss_mib: {
      first: samples[0]?.rssMiB,
      after_warmup: steady[0]?.rssMiB,
      max_earlier_half: earlier,
      max_later_half: later,
      last: samples.at(-1)?.rssMiB,
      every_30s: samples.filter((s) => s.second % 30 < SAMPLE_MS / 1000).map((s) => s.rssMiB),
    },
    max_backlog: Math.max(...samples.map((s) => s.backlog)),
    latency_ms: {
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1),
    },
  };
  reportFigures("load", figures);
  assert.deepEqual(ledger.lost(10), []);
  assert.ok(steady.length >= 4, `too short a run for a steady state: ${SECONDS} s`);
  assert.ok(
    later <= Math.max(earlier * 1.1, earlier + 10),
    `RSS grew from ${earlier} to ${later} MiB`,
  );
  assert.ok(figures.max_backlog <= RATE * 2, `backlog reached ${figures.max_backlog}`);
});
