/**
 * `handleBatch` end to end against real nsqd (docs/batch.md): batches fill and
 * their tail is handed over after `wait`, each item gets its own outcome,
 * waiting and running items are touched, a drain hands the partial batch
 * over, and a bad `batch:` is a config error.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/config_error.ts";
import { PermanentError } from "../../src/mod.ts";
import type { BatchItem, BatchResult, WorkerDefinition } from "../../src/worker/worker.ts";
import { openCanary } from "../helpers/canary.ts";
import { runCli, spawnCli, TempDir } from "../helpers/daemon_process.ts";
import { envelope, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const decoder = new TextDecoder();

function yamlFor(nsq: NsqCluster, topic: string, entry: string, extra = ""): string {
  return `
nsq:
  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]
  output_buffer_timeout: 25ms
defaults:
  requeue_delay: 10ms
  max_requeue_delay: 50ms
${extra}
workers:
  - topic: ${topic}
    channel: work
    worker: test/batch
${entry.trim().split("\n").map((line) => `    ${line}`).join("\n")}
`;
}

Deno.test("10,050 messages, size 100, wait 200ms: each handled once, full batches, the tail after wait", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("fill");
  const total = 10_050;
  await nsq.publishMany(topic, Array.from({ length: total }, (_, n) => JSON.stringify({ n })));
  const seen = new Uint8Array(total);
  const batches: { items: number; calledAt: number; endedAt: number }[] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, "max_in_flight: 100\nbatch: { size: 100, wait: 200ms }"),
    workers: {
      "test/batch": {
        handleBatch(items: readonly BatchItem<{ n: number }>[]) {
          const calledAt = performance.now();
          for (const { body } of items) seen[body.n]!++;
          batches.push({ items: items.length, calledAt, endedAt: performance.now() });
        },
      },
    },
  });
  await waitFor(() => seen.every((n) => n > 0), {
    message: "every message handled",
    timeoutMs: 30_000,
  }).catch((e) => {
    throw new Error(`${e}: ${batches.length} batches, ${JSON.stringify(daemon.logs.slice(0, 8))}`);
  });
  await waitFor(async () => (await nsq.channel(topic, "work"))?.in_flight_count === 0);
  assert.deepEqual(seen.filter((n) => n !== 1), new Uint8Array(0), "each handled once");
  const sizes = batches.map((b) => b.items);
  assert.deepEqual(sizes, [...new Array(100).fill(100), 50]);
  // max_in_flight is the batch size: the tail arrives only after the last full batch ended.
  const tailWaited = batches[100]!.calledAt - batches[99]!.endedAt;
  assert.ok(tailWaited >= 180 && tailWaited < 2_000, `the tail waited ${tailWaited} ms`);
  const entry = daemon.supervisor.entries[0]!;
  assert.equal(entry.stats.snapshot().outcomes.finish, total);
  const stats = entry.batchStats!.snapshot();
  assert.equal(stats.batches, 101);
  assert.equal(stats.items.sum, total);
  assert.equal(daemon.logs.filter((r) => r.msg === "batch handled").length, 101);
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.requeue_count, 0);
  assert.equal(channel?.timeout_count, 0);
});

Deno.test("per-item results, each on its own message; invalid and duplicate messages never reach handleBatch", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("mixed");
  await nsq.createChannel(`${topic}.dead`, "check");
  type Body = { key: string; kind: "ok" | "retry" | "permanent" | "invalid" };
  const calls: { key: string; attempts: number }[][] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(
      nsq,
      topic,
      "max_in_flight: 10\nmax_attempts: 3\nbatch: { size: 10, wait: 100ms }",
    ),
    workers: {
      "test/batch": {
        validate: (body: Body) => body.kind !== "invalid",
        dedupeKey: (body: Body) => body.key,
        handleBatch(items: readonly BatchItem<Body>[]): BatchResult[] {
          calls.push(
            items.map(({ body, message }) => ({ key: body.key, attempts: message.attempts })),
          );
          return items.map(({ body, message }) => {
            if (body.kind === "permanent") return new PermanentError(`refused ${body.key}`);
            if (body.kind === "retry" && message.attempts < 2) return new Error("try again");
            return "finish";
          });
        },
      } satisfies WorkerDefinition<Body>,
    },
  });
  const bodies: Body[] = [
    { key: "a", kind: "ok" },
    { key: "b", kind: "retry" },
    { key: "c", kind: "permanent" },
    { key: "d", kind: "invalid" },
    { key: "e", kind: "ok" },
  ];
  await nsq.publishMany(topic, bodies.map((b) => JSON.stringify(b)));
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === 3, { message: "a, e and b finished" });
  await nsq.publish(topic, JSON.stringify({ key: "a", kind: "ok" }));
  await waitFor(() => stats.snapshot().outcomes.duplicate === 1, {
    message: "a's copy a duplicate",
  });

  const letters = (await nsq.readTopic(`${topic}.dead`, 2, { channel: "check" })).map(envelope);
  assert.deepEqual(letters.map((l) => [JSON.parse(String(l.body)).key, l.reason]).sort(), [
    ["c", "permanent"],
    ["d", "validate"],
  ]);
  assert.equal(letters.find((l) => l.reason === "permanent")!.error, "refused c");
  const handled = calls.flat();
  assert.deepEqual(handled.filter((h) => h.key === "b").map((h) => h.attempts), [1, 2]);
  assert.ok(handled.every((h) => h.key !== "d"), "the invalid message never reached handleBatch");
  assert.equal(handled.filter((h) => h.key === "a").length, 1, "a's copy never reached it");
  const outcomes = stats.snapshot().outcomes;
  assert.deepEqual([outcomes.retry, outcomes.dead], [1, 2]);
  await waitFor(async () => (await nsq.channel(topic, "work"))?.in_flight_count === 0);
});

const decodeAll = (held: readonly { body: Uint8Array }[]) =>
  held.map((m) => decoder.decode(m.body));

Deno.test("a batch running longer than nsqd's msg-timeout is touched: no message redelivered", async () => {
  await using nsq = await startNsq({ nsqdArgs: ["--msg-timeout=1s"] });
  const topic = uniqueTopic("slow");
  let timedOut: (() => Promise<boolean>) | null = null;
  const calls: number[] = [];
  const started = Promise.withResolvers<void>();
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, "max_in_flight: 3\ntimeout: 30s\nbatch: { size: 3, wait: 50ms }"),
    workers: {
      "test/batch": {
        decode: "text",
        async handleBatch(items, ctx) {
          calls.push(items.length);
          started.resolve();
          await waitFor(() => timedOut !== null && timedOut(), {
            message: "the canary timed out",
            timeoutMs: 15_000,
          });
          assert.equal(ctx.signal.aborted, false);
        },
      },
    },
  });
  await nsq.publishMany(topic, ["1", "2", "3"]);
  await started.promise;
  {
    await using canary = await openCanary(nsq, topic, "work");
    timedOut = canary.timedOut;
    const stats = daemon.supervisor.entries[0]!.stats;
    await waitFor(() => stats.snapshot().outcomes.finish === 3, { timeoutMs: 15_000 });
    assert.ok(canary.held.length >= 1, "the canary went to the bare connection");
    assert.deepEqual(new Set(decodeAll(canary.held)), new Set(["canary"]));
  }
  assert.deepEqual(calls, [3]);
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.timeout_count, 1, "only the canary timed out");
  assert.equal(channel?.requeue_count, 0);
});

Deno.test("messages waiting longer than nsqd's msg-timeout for their batch are touched; shutdown hands them over", async () => {
  await using nsq = await startNsq({ nsqdArgs: ["--msg-timeout=1s"] });
  const topic = uniqueTopic("waiting");
  const calls: number[] = [];
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, "max_in_flight: 5\nbatch: { size: 5, wait: 1m }"),
    workers: {
      "test/batch": {
        decode: "text",
        handleBatch(items) {
          calls.push(items.length);
        },
      },
    },
  });
  await nsq.publishMany(topic, ["1", "2"]);
  const entry = daemon.supervisor.entries[0]!;
  await waitFor(() => entry.consumer.inFlight === 2, { message: "2 messages in the batch" });
  // RDY 0: the canary goes to the bare connection, and the batch waits on.
  entry.consumer.pause();
  await waitFor(async () =>
    (await nsq.channel(topic, "work"))?.clients.every((c) => c.ready_count === 0) ?? false
  );
  {
    await using canary = await openCanary(nsq, topic, "work");
    await waitFor(canary.timedOut, { message: "the canary timed out", timeoutMs: 15_000 });
    assert.deepEqual(calls, [], "the batch is still waiting");
    await daemon.shutdown();
    assert.ok(canary.held.length >= 1, "the canary went to the bare connection");
    assert.deepEqual(new Set(decodeAll(canary.held)), new Set(["canary"]));
  }
  assert.deepEqual(calls, [2]);
  assert.equal(daemon.supervisor.entries[0]!.stats.snapshot().outcomes.finish, 2);
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.timeout_count, 1, "only the canary timed out");
  assert.equal(channel?.requeue_count, 0);
});

Deno.test("SIGTERM with a half-full batch: the batch is handed over, finished, exit 0", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("sigterm");
  // batch_record's own batch: 10 items, a 60 s wait, so only the drain hands these 4 over.
  const config = await dir.writeConfig(`
nsq: { nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}] }
http: { listen: 127.0.0.1:0 }
shutdown_timeout: 10s
workers:
  - { topic: ${topic}, channel: work, worker: batch_record, max_in_flight: 10,
      options: { out: ${dir.join("out.txt")}, sleep_ms: 300 } }
`);
  await using daemon = spawnCli(["run", "-c", config], { writeDir: dir.path });
  const listening = await daemon.waitForLine((line) => line.includes("http listening"));
  const address = JSON.parse(listening).address;
  await daemon.waitForLine((line) => line.includes("connected to nsqd"));
  await nsq.publishMany(topic, ["m0", "m1", "m2", "m3"]);
  const inFlight = async () => {
    const stats = await (await fetch(`http://${address}/stats`)).json();
    return stats.entries[0].in_flight;
  };
  await waitFor(async () => await inFlight() === 4, {
    message: "the daemon holds 4 messages waiting in the batch",
  });
  daemon.signal("SIGTERM");
  const { code } = await daemon.status;
  assert.equal(code, 0, daemon.stderr.join("\n"));
  const lines = (await dir.readLines("out.txt")).map((line) => line.split(" "));
  assert.deepEqual(lines.map(([, attempts, body, items]) => [body, attempts, items]).sort(), [
    ["m0", "1", "4"],
    ["m1", "1", "4"],
    ["m2", "1", "4"],
    ["m3", "1", "4"],
  ]);
  await waitFor(async () => (await nsq.channel(topic, "work"))?.in_flight_count === 0);
  const channel = await nsq.channel(topic, "work");
  assert.deepEqual([channel?.depth, channel?.requeue_count, channel?.timeout_count], [0, 0, 0]);
});

for (
  const [name, entry, expected] of [
    [
      "batch.size above max_in_flight",
      "max_in_flight: 50\n    batch: { size: 200, wait: 1s }",
      /:8:\d+: workers\[0\]\.batch\.size must be at most max_in_flight \(50\)/,
    ],
    [
      "batch.size zero",
      "max_in_flight: 50\n    batch: { size: 0 }",
      /:8:\d+: workers\[0\]\.batch\.size must be an integer from 1 to 2500, got 0/,
    ],
    [
      "batch.size negative",
      "max_in_flight: 50\n    batch: { size: -5 }",
      /:8:\d+: workers\[0\]\.batch\.size must be an integer from 1 to 2500, got -5/,
    ],
    [
      "a batch.wait that is no duration",
      "max_in_flight: 50\n    batch: { size: 10, wait: soon }",
      /:8:\d+: workers\[0\]\.batch\.wait must be a duration/,
    ],
    [
      "the worker's batch.size above max_in_flight",
      "max_in_flight: 5",
      /:6:13: .*declares batch\.size 10, above this entry's max_in_flight 5/,
    ],
  ] as const
) {
  Deno.test(`check refuses ${name}: exit 2 at file:line:col`, async () => {
    await using dir = await TempDir.create();
    const path = await dir.writeConfig(`nsq:
  nsqd_tcp_addresses: [127.0.0.1:4150]
workers:
  - topic: sink
    channel: work
    worker: batch_record
    ${entry}
`);
    const { code, stderr } = await runCli(["check", "-c", path]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, new RegExp(`config\\.yaml${expected.source}`));
    assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  });
}

for (
  const [name, worker, entry, expected] of [
    [
      "a worker with both handle and handleBatch",
      { handle() {}, handleBatch() {} },
      "",
      /:12:13: .*has both handle\(\) and handleBatch\(\)/,
    ],
    [
      "a worker with neither handle nor handleBatch",
      { decode: "text" },
      "",
      /:12:13: .*has no handle\(\) or handleBatch\(\)/,
    ],
    [
      "a worker with batch but no handleBatch",
      { handle() {}, batch: { size: 5 } },
      "",
      /:12:13: .*batch is only for a worker with handleBatch/,
    ],
    [
      "an entry's batch for a worker with handle",
      { handle() {} },
      "batch: { size: 5 }",
      /:14:12: workers\[0\]\.batch is only for a worker with handleBatch\(\)/,
    ],
  ] as const
) {
  Deno.test(`${name} is refused at file:line:col`, async () => {
    await using nsq = await startNsq({ lookupd: false });
    const error = await startInProcess({
      yaml: yamlFor(nsq, uniqueTopic("refused"), `max_in_flight: 5\n${entry}`),
      workers: { "test/batch": worker as WorkerDefinition },
    }).then(() => null, (error: unknown) => error);
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, new RegExp(`test\\.yaml${expected.source}`));
  });
}
