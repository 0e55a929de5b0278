/**
 * Dedupe stores that fail: a sqlite store path that cannot be opened at
 * start, and redis restarted under two daemons that share it, with its data
 * kept (append-only file) and lost (`--save ""`, no append-only file).
 */

import assert from "node:assert/strict";
import { runCli, TempDir } from "../helpers/daemon_process.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startRedis } from "../helpers/redis_server.ts";
import { Ledger, makeIds, reportFigures } from "./ledger.ts";
import { startPublisher } from "./paced_publisher.ts";
import { waitSettled } from "./settled.ts";

const CHANNEL = "work";

Deno.test("a sqlite store path that cannot be opened is a config error naming the path: check and run exit 2", async () => {
  await using dir = await TempDir.create();
  const notADatabase = dir.join("notes.txt");
  await Deno.writeTextFile(notADatabase, "these are notes, not a database\n");
  for (const path of [dir.join("missing_dir/dedupe.db"), notADatabase]) {
    const config = await dir.writeConfig([
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:1]",
      "dedupe:",
      `  store: sqlite:${path}`,
      "http: { listen: null }",
      "workers:",
      "  - { topic: t, channel: c, worker: ledger, options: { out: x } }",
      "",
    ].join("\n"));
    for (const command of ["check", "run"]) {
      const { code, stderr } = await runCli([command, "-c", config], { writeDir: dir.path });
      assert.equal(code, 2, `${command}: ${stderr}`);
      assert.match(stderr, new RegExp(`config\\.yaml:4:10: dedupe\\.store .*${path}`), command);
      assert.doesNotMatch(stderr, /\n\s+at /, `${command}: a stack trace`);
    }
  }
});

for (const persistence of [true, false]) {
  const kept = persistence ? "kept" : "lost";
  Deno.test(`redis restarted twice under two daemons sharing it, data ${kept}: nothing lost, duplicates bounded`, async () => {
    await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=2s"] });
    await using redis = await startRedis({ persistence });
    const topic = uniqueTopic(`redis_restart_${kept}`);
    await nsq.createChannel(topic, CHANNEL);
    const ledger = new Ledger();
    const maxInFlight = 10;
    const yaml = [
      "nsq:",
      `  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]`,
      "defaults:",
      "  requeue_delay: 10ms",
      "  max_requeue_delay: 100ms",
      "  max_attempts: 1000",
      "dedupe:",
      `  store: ${redis.url}`,
      "  on_store_error: retry",
      "workers:",
      `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: ${maxInFlight} }`,
      "",
    ].join("\n");
    const worker = {
      decode: "text" as const,
      async handle(id: string) {
        await new Promise((resolve) => setTimeout(resolve, 3));
        ledger.handled(id);
      },
    };
    await using first = await startInProcess({ yaml, workers: { rec: worker } });
    await using second = await startInProcess({ yaml, workers: { rec: worker } });
    await using publisher = startPublisher({
      nsq,
      topic,
      ids: makeIds("s", 3_000),
      ledger,
      ratePerSec: 1_000,
    });
    const restarts = 2;
    for (let i = 1; i <= restarts; i++) {
      await waitFor(() => ledger.distinctHandled >= i * 900, { message: `${i * 900} handled` });
      await redis.kill();
      await redis.start();
    }
    await publisher.done;
    await waitSettled(nsq, topic, CHANNEL, ledger);
    const stats = [first, second].map((d) => d.supervisor.entries[0]!.stats.snapshot());
    await first.shutdown();
    await second.shutdown();
    const figures = { ...ledger.figures(), restarts };
    const storeFailures = stats.reduce((sum, s) => sum + s.storeFailures, 0);
    // A message a killed redis forgot may come back (nsqd's timeout) while its
    // first run's FIN was lost: at most what both daemons had in flight, per restart.
    const bound = 2 * maxInFlight * restarts;
    reportFigures(`redis_restart_data_${kept}`, {
      ...figures,
      store_failures: storeFailures,
      caught_by_dedupe: stats.reduce((sum, s) => sum + s.outcomes.duplicate, 0),
      bound,
    });
    assert.deepEqual(ledger.lost(10), []);
    assert.deepEqual(ledger.strangers(), []);
    assert.ok(figures.duplicated <= bound, `${figures.duplicated} duplicates, bound ${bound}`);
  });
}
