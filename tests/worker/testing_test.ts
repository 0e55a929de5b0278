/**
 * The test kit (`src/testing.ts`): every message outcome is reachable
 * through it, with the reason and error the daemon gives (checked against
 * the daemon itself on real nsqd), and `ctx` behaves as the daemon's does.
 */
import assert from "node:assert/strict";
import { PermanentError } from "../../src/mod.ts";
import { dedupeStore, runWorker } from "../../src/testing.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { WorkerLoadError } from "../../src/worker/worker_loader.ts";
import { deferred, envelope, oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";

/** What each test body asks the worker to do. */
interface Order {
  valid?: boolean;
  key?: unknown;
  fail?: "throw" | "permanent";
}

/** One worker that reaches each dead reason on demand. */
const orders: WorkerDefinition<Order> = {
  validate: (body) => body.valid !== false,
  dedupeKey: (body) => {
    if (body.key === "throw") throw new Error("no key in this body");
    return body.key as string | undefined;
  },
  handle(body) {
    if (body.fail === "permanent") throw new PermanentError("cannot ever work");
    if (body.fail === "throw") throw new TypeError("boom");
  },
};

/** Bodies that reach every dead reason of a single attempt, as published to nsqd. */
const DEAD_BODIES = [
  "not json",
  JSON.stringify({ valid: false }),
  JSON.stringify({ key: "throw" }),
  JSON.stringify({ key: { an: "object" } }),
  JSON.stringify({ fail: "permanent" }),
  JSON.stringify({ fail: "throw" }),
];

Deno.test("finish: the handler returned", async () => {
  assert.deepEqual((await runWorker(orders, {})).outcome, { kind: "finish" });
});

Deno.test("retry: the handler threw before max_attempts, with the entry's backoff", async () => {
  const { outcome } = await runWorker(orders, { fail: "throw" }, { attempts: 2 });
  assert.equal(outcome.kind, "retry");
  assert.equal(outcome.error, "TypeError: boom");
  // requeue_delay 5s doubled once, ±25 % jitter.
  assert.ok(outcome.delayMs! >= 7_500 && outcome.delayMs! <= 12_500, `${outcome.delayMs}`);
});

Deno.test("dead, max_attempts: the handler threw on the last attempt", async () => {
  const { outcome } = await runWorker(orders, { fail: "throw" }, { attempts: 3, maxAttempts: 3 });
  assert.deepEqual(outcome, { kind: "dead", reason: "max_attempts", error: "TypeError: boom" });
});

Deno.test("duplicate: a key already done in a shared store (a custom key, or the same id)", async () => {
  const store = dedupeStore();
  assert.equal((await runWorker(orders, { key: "k1" }, { store })).outcome.kind, "finish");
  assert.deepEqual((await runWorker(orders, { key: "k1" }, { store })).outcome, {
    kind: "duplicate",
  });
  assert.equal((await runWorker(orders, {}, { store, id: "0a1b" })).outcome.kind, "finish");
  assert.equal((await runWorker(orders, {}, { store, id: "0a1b" })).outcome.kind, "duplicate");
  assert.equal((await runWorker(orders, {}, { store })).outcome.kind, "finish", "a new id");
});

Deno.test("busy: the key is claimed by a run still going", async () => {
  const store = dedupeStore();
  const started = deferred();
  const release = deferred();
  const slow: WorkerDefinition<{ key: string }> = {
    dedupeKey: (body) => body.key,
    async handle() {
      started.resolve();
      await release.promise;
    },
  };
  const first = runWorker(slow, { key: "k" }, { store });
  await started.promise;
  const second = await runWorker(slow, { key: "k" }, { store });
  assert.equal(second.outcome.kind, "busy");
  assert.ok(second.outcome.delayMs! >= 1_000 && second.outcome.delayMs! <= 6_250);
  release.resolve();
  assert.equal((await first).outcome.kind, "finish");
});

Deno.test("timeouts are real: ctx.signal aborts and the message is retried", async () => {
  let reason: unknown;
  const hangs: WorkerDefinition = {
    handle: (_body, ctx) =>
      new Promise<void>((resolve) => {
        ctx.signal.addEventListener("abort", () => {
          reason = ctx.signal.reason;
          resolve();
        });
      }),
  };
  const { outcome } = await runWorker(hangs, {}, { timeoutMs: 30 });
  assert.equal(outcome.kind, "retry");
  assert.equal(outcome.error, "handler timed out after 30ms");
  assert.ok(reason instanceof DOMException && reason.name === "TimeoutError", String(reason));
});

Deno.test("ctx: options merged, publishes recorded, logs captured with the message's fields", async () => {
  const worker: WorkerDefinition<string, { to: string; unused: number }> = {
    options: { to: "default", unused: 1 },
    decode: "text",
    async handle(body, ctx) {
      ctx.log.info("got", { body });
      await ctx.publish(ctx.options.to, body);
      await ctx.publishMany(ctx.options.to, [new Uint8Array([1]), { n: 2 }]);
      await ctx.publishDeferred("later", "x", 250);
      ctx.log.warning("done");
    },
  };
  const result = await runWorker(worker, "hello", {
    options: { to: "out" },
    id: "0123456789abcdef",
    attempts: 2,
  });
  assert.deepEqual(result, {
    outcome: { kind: "finish" },
    published: [
      { topic: "out", body: "hello" },
      { topic: "out", body: new Uint8Array([1]) },
      { topic: "out", body: { n: 2 } },
      { topic: "later", body: "x", delayMs: 250 },
    ],
    logs: [
      {
        level: "info",
        msg: "got",
        properties: { msg_id: "0123456789abcdef", attempts: 2, body: "hello" },
      },
      { level: "warning", msg: "done", properties: { msg_id: "0123456789abcdef", attempts: 2 } },
    ],
  });
});

Deno.test("a publish nsqd would refuse is refused, and fails the handler as it would", async () => {
  const worker: WorkerDefinition = {
    handle: (_body, ctx) => ctx.publish("not a topic!", "x"),
  };
  const { outcome, published } = await runWorker(worker, {});
  assert.equal(outcome.kind, "retry");
  assert.match(outcome.error!, /^PublishError: cannot publish to not a topic!: the topic is not/);
  assert.deepEqual(published, []);
});

Deno.test("a worker check would refuse, or an undeclared option, is refused", async () => {
  await assert.rejects(
    runWorker({ hadle() {} } as unknown as WorkerDefinition, {}),
    (error) => error instanceof WorkerLoadError && /unknown key "hadle"/.test(error.message),
  );
  await assert.rejects(
    runWorker({ options: { a: 1 }, handle() {} }, {}, { options: { b: 2 } as never }),
    (error) =>
      error instanceof WorkerLoadError && /options\.b is not an option/.test(error.message),
  );
});

Deno.test("each dead reason and error is the one the daemon gives on real nsqd", async () => {
  const kit = await Promise.all(
    DEAD_BODIES.map(async (body) => (await runWorker(orders, body, { maxAttempts: 1 })).outcome),
  );
  assert.deepEqual(kit.map((outcome) => outcome.reason), [
    "decode",
    "validate",
    "dedupe_key",
    "dedupe_key",
    "permanent",
    "max_attempts",
  ]);

  await using nsq = await startNsq();
  const topic = uniqueTopic("kit");
  await nsq.createChannel(`${topic}.dead`, "check");
  await using _daemon = await startInProcess({
    yaml: oneEntryYaml(nsq.nsqds[0]!.tcpAddress, topic, "max_attempts: 1"),
    workers: { "test/worker": orders },
  });
  for (const body of DEAD_BODIES) await nsq.publish(topic, body);
  const letters = (await nsq.readTopic(`${topic}.dead`, DEAD_BODIES.length, { channel: "check" }))
    .map(envelope);
  const daemon = new Map(letters.map((letter) => [letter.body, letter]));
  for (const [i, body] of DEAD_BODIES.entries()) {
    const letter = daemon.get(body);
    assert.ok(letter, `no dead letter for ${body}`);
    assert.deepEqual(
      { kind: "dead", reason: letter.reason, error: letter.error },
      kit[i],
      `for ${body}`,
    );
  }
});
