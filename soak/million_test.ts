/**
 * A million messages (soak): `nsqworker run` with the sqlite store consumes
 * through a real Toxiproxy in front of nsqd while it is SIGKILLed 20 times,
 * nsqd is restarted 5 times and the proxy resets every connection 5 times.
 * Every id handled at least once; duplicates reported against the bound;
 * the daemon's RSS sampled every second; the figures written to
 * `soak/results/million.json` (SOAK_MESSAGES scales the run, e.g. 100000).
 */

import assert from "node:assert/strict";
import { spawnCli, TempDir } from "../tests/helpers/daemon_process.ts";
import { startNsq } from "../tests/helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../tests/helpers/nsq/unique_topic.ts";
import { waitFor } from "../tests/helpers/wait_for.ts";
import { startToxiproxy } from "../tests/helpers/toxiproxy.ts";
import { Ledger, makeIds, readLedgerFile, reportFigures } from "../tests/reliability/ledger.ts";
import { startPublisher } from "../tests/reliability/paced_publisher.ts";
import { Prng, seedFromEnv } from "../tests/reliability/prng.ts";

const CHANNEL = "million";
const MAX_IN_FLIGHT = 100;
const KILLS = 20;
const NSQD_RESTARTS = 5;
const PROXY_RESETS = 5;

/** Through `cat`: Deno reads another process's /proc files only with --allow-all. */
async function rssKib(pid: number): Promise<number | null> {
  const { stdout } = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stderr: "null",
  }).output();
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(new TextDecoder().decode(stdout))?.[1]);
  return Number.isFinite(kib) ? kib : null;
}

Deno.test("a million messages with the sqlite store: 20 SIGKILLs, 5 nsqd restarts, 5 proxy resets, none lost", async () => {
  const messages = Number(Deno.env.get("SOAK_MESSAGES") ?? 1_000_000);
  const seed = seedFromEnv(13);
  const random = new Prng(seed);
  const started = performance.now();
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=5s"] });
  const nsqd = nsq.nsqds[0]!;
  await using toxiproxy = await startToxiproxy();
  const proxy = await toxiproxy.proxy("nsqd", nsqd.tcpAddress);
  await using dir = await TempDir.create();
  const topic = uniqueTopic("million");
  const out = dir.join("ledger.txt");
  const config = await dir.writeConfig({
    nsq: { nsqd_tcp_addresses: [proxy.listen] },
    dedupe: { store: `sqlite:${dir.join("dedupe.db")}` },
    log: { level: "info", format: "json" },
    http: { listen: null },
    shutdown_timeout: "10s",
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "ledger",
      max_in_flight: MAX_IN_FLIGHT,
      options: { out },
    }],
  });
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  const ratePerSec = 5_000;
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("m", messages),
    ledger,
    ratePerSec,
    batch: 500,
  });

  // Faults spread over the publishing time, in a seeded order.
  const faults: ("kill" | "restart" | "reset")[] = [
    ...Array<"kill">(KILLS).fill("kill"),
    ...Array<"restart">(NSQD_RESTARTS).fill("restart"),
    ...Array<"reset">(PROXY_RESETS).fill("reset"),
  ];
  for (let i = faults.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [faults[i], faults[j]] = [faults[j]!, faults[i]!];
  }
  const rss: number[] = [];
  const inFlightAtKills: number[] = [];
  let daemon = spawnCli(["run", "-c", config], { writeDir: dir.path });
  const pidOf = async (d: typeof daemon) =>
    JSON.parse(
      await d.waitForLine((l) => l.includes('"msg":"ledger: ready"'), {
        timeoutMs: 60_000,
      }),
    ).pid as number;
  let pid = await pidOf(daemon);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const kib = await rssKib(pid);
      if (kib !== null) rss.push(kib);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  })();
  try {
    for (const [n, fault] of faults.entries()) {
      await waitFor(() => publisher.accepted >= (messages * (n + 1)) / (faults.length + 1), {
        timeoutMs: 600_000,
        intervalMs: 100,
        message: `fault ${n + 1}`,
      });
      if (fault === "kill") {
        const clients = (await nsq.channel(topic, CHANNEL))?.clients ?? [];
        inFlightAtKills.push(clients.reduce((sum, c) => sum + c.in_flight_count, 0));
        daemon.signal("SIGKILL");
        await daemon.status;
        await daemon[Symbol.asyncDispose]();
        daemon = spawnCli(["run", "-c", config], { writeDir: dir.path });
        pid = await pidOf(daemon);
      } else if (fault === "restart") {
        await nsqd.stop();
        await nsqd.start();
      } else {
        await proxy.add("reset", "reset_peer", { timeout: 0 });
        await waitFor(
          async () => ((await nsq.channel(topic, CHANNEL))?.clients ?? []).length === 0,
          {
            message: "connections reset",
          },
        );
        await proxy.remove("reset");
      }
    }
    await publisher.done;
    const seen = new Set<string>();
    await waitFor(async () => {
      for (const line of await readLedgerFile(out)) seen.add(line.id);
      return seen.size >= ledger.publishedCount;
    }, { timeoutMs: 600_000, intervalMs: 2_000, message: `every id handled (seed ${seed})` });
    daemon.signal("SIGTERM");
    assert.equal((await daemon.status).code, 0);
  } finally {
    sampling = false;
    await sampler;
    await daemon[Symbol.asyncDispose]();
  }
  for (const line of await readLedgerFile(out)) ledger.handled(line.id);
  const figures = ledger.figures();
  const quarter = Math.max(1, Math.floor(rss.length / 4));
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
  const result = {
    ...figures,
    kills: KILLS,
    nsqd_restarts: NSQD_RESTARTS,
    proxy_resets: PROXY_RESETS,
    in_flight_at_kills: inFlightAtKills,
    // Only what a killed daemon (or a cut connection) had in flight can run twice.
    bound: MAX_IN_FLIGHT * (KILLS + NSQD_RESTARTS + PROXY_RESETS),
    rss_kib: {
      samples: rss.length,
      first_quarter_median: median(rss.slice(0, quarter)),
      last_quarter_median: median(rss.slice(-quarter)),
      max: Math.max(...rss),
    },
    rate_per_s: ratePerSec,
    refused_publishes: publisher.refused,
    seed,
    seconds: Math.round((performance.now() - started) / 1000),
  };
  reportFigures("million_soak", result);
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL("./results/million.json", import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  assert.deepEqual(ledger.lost(10), [], `ids lost (seed ${seed})`);
  assert.deepEqual(ledger.strangers(), []);
  assert.ok(figures.duplicated <= result.bound, `${figures.duplicated} duplicates`);
  // Flat: the last quarter's median within 50 % of the first's (each daemon restarts cold).
  assert.ok(
    result.rss_kib.last_quarter_median <= result.rss_kib.first_quarter_median * 1.5,
    `RSS grew from ${result.rss_kib.first_quarter_median} to ${result.rss_kib.last_quarter_median} KiB`,
  );
});
