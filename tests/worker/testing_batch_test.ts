/**
 * The test kit's `runBatch` (src/testing.ts): each body through the task
 * runner and the daemon's own batcher, one outcome per body; and the same
 * outcomes as the daemon on real nsqd.
 */
import assert from "node:assert/strict";
import { PermanentError } from "../../src/mod.ts";
import { dedupeStore, runBatch, runWorker } from "../../src/testing.ts";
import type { BatchResult, WorkerDefinition } from "../../src/worker/worker.ts";
import { envelope, oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

/** What each body asks its item's result to be. */
interface Item {
  n: number;
  key?: string;
  valid?: boolean;
  result?: "finish" | "undefined" | "error" | "permanent";
}

/** Records what reaches `handleBatch` and answers each item as its body says. */
function perItem(seen: number[][]): WorkerDefinition<Item> {
  return {
    validate: (body) => body.valid !== false,
    dedupeKey: (body) => body.key,
    handleBatch(items): BatchResult[] {
      seen.push(items.map(({ body }) => body.n));
      return items.map(({ body }) => {
        switch (body.result) {
          case "error":
            return new Error(`item ${body.n} failed`);
          case "permanent":
            return new PermanentError(`item ${body.n} can never work`);
          case "finish":
            return "finish";
          default:
            return undefined;
        }
      });
    },
  };
}

Deno.test("runBatch: each per-item result on its own body, in one batch", async () => {
  const seen: number[][] = [];
  const { outcomes, batches } = await runBatch(perItem(seen), [
    { n: 1, result: "finish" },
    { n: 2, result: "undefined" },
    { n: 3, result: "error" },
    { n: 4, result: "permanent" },
  ], { attempts: 2 });
  assert.deepEqual(seen, [[1, 2, 3, 4]]);
  assert.deepEqual(batches, [4]);
  assert.deepEqual(outcomes.map(({ delayMs: _, ...outcome }) => outcome), [
    { kind: "finish" },
    { kind: "finish" },
    { kind: "retry", error: "item 3 failed" },
    { kind: "dead", reason: "permanent", error: "item 4 can never work" },
  ]);
  // The retry's delay is the entry's backoff for attempt 2: requeue_delay 5s doubled, ±25 % jitter.
  const delayMs = outcomes[2]!.delayMs!;
  assert.ok(delayMs >= 7_500 && delayMs <= 12_500, `${delayMs}`);
});

Deno.test("runBatch: a throw retries every item; a wrong-length result retries every item and is logged once", async () => {
  const thrower: WorkerDefinition<Item> = {
    handleBatch() {
      throw new TypeError("the sink is down");
    },
  };
  const thrown = await runBatch(thrower, [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(thrown.outcomes.map((outcome) => [outcome.kind, outcome.error]), [
    ["retry", "TypeError: the sink is down"],
    ["retry", "TypeError: the sink is down"],
  ]);

  const short: WorkerDefinition<Item> = { handleBatch: () => ["finish"] };
  const { outcomes, logs } = await runBatch(short, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  const bug = "handleBatch must return nothing or one result per item (3), got 1 results";
  assert.deepEqual(outcomes.map((outcome) => [outcome.kind, outcome.error]), [
    ["retry", bug],
    ["retry", bug],
    ["retry", bug],
  ]);
  assert.deepEqual(logs.filter((log) => log.level === "error"), [{
    level: "error",
    msg: "handleBatch returned a wrong result; every item is retried",
    properties: { items: 3, error: bug },
  }]);
});

Deno.test("runBatch: invalid, duplicate and busy bodies never reach handleBatch; batches of the entry's size", async () => {
  const seen: number[][] = [];
  const store = dedupeStore();
  await runBatch(perItem(seen), [{ n: 0, key: "a" }], { store });
  const { outcomes, batches } = await runBatch(perItem(seen), [
    { n: 1, key: "a" },
    { n: 2, valid: false },
    "not json",
    { n: 4, key: "b" },
    { n: 5, key: "b" },
    { n: 6 },
    { n: 7 },
  ], { store, batch: { size: 2 } });
  assert.deepEqual(outcomes.map((outcome) => outcome.reason ?? outcome.kind), [
    "duplicate",
    "validate",
    "decode",
    "finish",
    "busy",
    "finish",
    "finish",
  ]);
  assert.deepEqual(seen, [[0], [4, 6], [7]]);
  assert.deepEqual(batches, [2, 1]);
});

Deno.test("runBatch and runWorker each refuse the other kind of worker", async () => {
  await assert.rejects(runBatch({ handle() {} }, [{}]), /runBatch needs a worker with handleBatch/);
  await assert.rejects(runWorker({ handleBatch() {} }, {}), /test handleBatch with runBatch/);
});

Deno.test("runBatch gives each body the outcome the daemon gives it on real nsqd", async () => {
  const bodies: Item[] = [
    { n: 1, result: "finish" },
    { n: 2, result: "error" },
    { n: 3, result: "permanent" },
    { n: 4, valid: false },
    { n: 5 },
  ];
  const kit = await runBatch(perItem([]), bodies, { maxAttempts: 1 });

  await using nsq = await startNsq();
  const topic = uniqueTopic("kit_batch");
  await nsq.createChannel(`${topic}.dead`, "check");
  await using daemon = await startInProcess({
    yaml: oneEntryYaml(
      nsq.nsqds[0]!.tcpAddress,
      topic,
      "max_attempts: 1, max_in_flight: 5, batch: { size: 5, wait: 100ms }",
    ),
    workers: { "test/worker": perItem([]) as WorkerDefinition },
  });
  await nsq.publishMany(topic, bodies.map((body) => JSON.stringify(body)));
  const letters = (await nsq.readTopic(`${topic}.dead`, 3, { channel: "check" })).map(envelope);
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === 2, { message: "two finished" });
  const daemonOutcomes = bodies.map((body) => {
    const letter = letters.find((letter) => letter.body === JSON.stringify(body));
    return letter === undefined
      ? { kind: "finish" }
      : { kind: "dead", reason: letter.reason, error: letter.error };
  });
  assert.deepEqual(kit.outcomes, daemonOutcomes);
  assert.deepEqual(kit.outcomes.map((outcome) => outcome.reason ?? outcome.kind), [
    "finish",
    "max_attempts",
    "permanent",
    "validate",
    "finish",
  ]);
});
