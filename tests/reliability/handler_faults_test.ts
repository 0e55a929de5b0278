/**
 * Handler faults, in process against a real nsqd: handlers that throw
 * (anything), reject, never settle, return things that are not promises,
 * block the event loop for longer than nsqd's heartbeat allows, or allocate
 * wildly. Each message still ends finished or dead-lettered with its
 * reason, and the consumer keeps going.
 */

import assert from "node:assert/strict";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { envelope, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { makeIds, reportFigures } from "./ledger.ts";

const CHANNEL = "work";

function yaml(nsq: NsqCluster, topic: string, settings: Record<string, unknown>): string {
  const entry = Object.entries({ topic, channel: CHANNEL, worker: "faulty", ...settings })
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}`).join(", ");
  return `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\n` +
    `workers:\n  - { ${entry} }\n`;
}

interface Job {
  readonly id: string;
  readonly mode: string;
}

/** What each mode does, and what must become of it. */
const MODES: Record<string, { run: () => unknown; dead?: RegExp }> = {
  "return-undefined": { run: () => undefined },
  "return-number": { run: () => 42 },
  "return-string": { run: () => "done" },
  "return-null": { run: () => null },
  "return-function": { run: () => () => {} },
  // `then` that is not a function: not a promise, just an object.
  "return-then-field": { run: () => ({ then: 5 }) },
  "return-thenable": { run: () => ({ then: (resolve: (v: unknown) => void) => resolve(1) }) },
  "throw-error": { run: () => fail(new Error("thrown on purpose")), dead: /^thrown on purpose$/ },
  "throw-type-error": {
    run: () => fail(new TypeError("x is not a function")),
    dead: /^TypeError: x is not a function$/,
  },
  "throw-string": { run: () => fail("a plain string"), dead: /^a plain string$/ },
  "throw-null": { run: () => fail(null), dead: /^null$/ },
  "throw-undefined": { run: () => fail(undefined), dead: /^undefined$/ },
  "throw-object": { run: () => fail({ code: 42 }), dead: /^\{"code":42\}$/ },
  "throw-cyclic": {
    run: () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      fail(cyclic);
    },
    dead: /^\[object Object\]$/,
  },
  "throw-hostile": {
    run: () =>
      fail({
        toJSON() {
          throw new Error("no JSON");
        },
        toString() {
          throw new Error("no string");
        },
      }),
    dead: /cannot be turned into text/,
  },
  "throw-huge-message": { run: () => fail(new Error("x".repeat(100_000))), dead: /^x{999}…$/ },
  "reject": { run: () => Promise.reject(new Error("rejected on purpose")), dead: /^rejected/ },
  "reject-later": {
    run: () => new Promise((_, reject) => setTimeout(() => reject(new Error("rejected later")), 5)),
    dead: /^rejected later$/,
  },
  "thenable-throws": {
    run: () => ({
      then() {
        throw new Error("then threw");
      },
    }),
    dead: /^then threw$/,
  },
  "never-settles": { run: () => new Promise(() => {}), dead: /^handler timed out after 200ms$/ },
};

function fail(value: unknown): never {
  throw value;
}

Deno.test("throws, rejections, hangs and odd return values: each message finished or dead with its error", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("faults");
  await nsq.createChannel(`${topic}.dead`, "check");
  const handled = new Set<string>();
  const faulty: WorkerDefinition<Job> = {
    handle(job) {
      const result = MODES[job.mode]!.run();
      handled.add(job.id);
      return result as void;
    },
  };
  await using daemon = await startInProcess({
    yaml: yaml(nsq, topic, {
      max_attempts: 2,
      timeout: "200ms",
      requeue_delay: "0ms",
      max_requeue_delay: "10ms",
      max_in_flight: 50,
    }),
    workers: { faulty },
  });
  const perMode = 5;
  const jobs = Object.keys(MODES).flatMap((mode) =>
    Array.from({ length: perMode }, (_, i) => ({ id: `${mode}.${i}`, mode }))
  );
  await nsq.publishMany(topic, jobs.map((job) => JSON.stringify(job)));
  const deadJobs = jobs.filter((job) => MODES[job.mode]!.dead);
  const letters = (await nsq.readTopic(`${topic}.dead`, deadJobs.length, {
    channel: "check",
    timeoutMs: 15_000,
  })).map(envelope);

  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => stats.snapshot().outcomes.finish === jobs.length - deadJobs.length, {
    message: "every other message finished",
  });
  for (const letter of letters) {
    const job = JSON.parse(String(letter.body)) as Job;
    assert.equal(letter.reason, "max_attempts", job.mode);
    assert.equal(letter.attempts, 2, job.mode);
    assert.match(String(letter.error), MODES[job.mode]!.dead!, job.mode);
  }
  assert.deepEqual(
    letters.map((l) => JSON.parse(String(l.body)).id).sort(),
    deadJobs.map((j) => j.id).sort(),
  );
  // Still consuming afterwards.
  const after = makeIds("after", 20).map((id) => ({ id, mode: "return-undefined" }));
  await nsq.publishMany(topic, after.map((job) => JSON.stringify(job)));
  await waitFor(() => after.every((job) => handled.has(job.id)), {
    message: "messages after the faults handled",
  });
  const outcomes = stats.snapshot().outcomes;
  assert.equal(outcomes.dead, deadJobs.length);
  assert.equal(outcomes.retry, deadJobs.length);
  await daemon.shutdown();
  reportFigures("handler_faults", {
    modes: Object.keys(MODES).length,
    messages: jobs.length + after.length,
    finished: outcomes.finish,
    dead_lettered: outcomes.dead,
    retried: outcomes.retry,
  });
});

Deno.test("a handler that blocks the event loop past two heartbeats: nsqd drops the connection, the daemon reconnects, nothing runs twice", async () => {
  // nsqd closes a connection it has heard nothing from for two heartbeat
  // intervals. The daemon asks for 15 s heartbeats; 1 s here keeps it short.
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=2s"] });
  const topic = uniqueTopic("blocked");
  await nsq.createChannel(topic, CHANNEL);
  const runs = new Map<string, number>();
  let blockedMs = 0;
  const definition: WorkerDefinition<string> = {
    decode: "text",
    async handle(id) {
      if (id === "spin") {
        const started = Date.now();
        while (Date.now() - started < 3_500) {
          // Nothing else in the process runs: no heartbeat answer, no TOUCH.
        }
        blockedMs = Date.now() - started;
      } else {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      runs.set(id, (runs.get(id) ?? 0) + 1);
    },
  };
  await using daemon = await startInProcess({
    yaml: yaml(nsq, topic, { max_in_flight: 5 }),
    workers: { faulty: definition },
    connection: { heartbeatIntervalMs: 1_000, idleTimeoutMs: 3_000 },
  });
  const { supervisor, logs } = daemon;
  await waitFor(() => supervisor.readiness().ready, { message: "connected" });

  const before = makeIds("before", 8);
  await nsq.publishMany(topic, [...before.slice(0, 4), "spin", ...before.slice(4)]);
  await waitFor(() => blockedMs > 0, { message: "the blocking handler done" });
  const lost = () => logs.filter((r) => r.msg === "nsqd connection lost; reconnecting");
  await waitFor(() => lost().length > 0, { message: "the connection loss seen" });
  await waitFor(() => logs.some((r) => r.msg === "reconnected to nsqd"), {
    message: "reconnected",
  });
  const after = makeIds("after", 20);
  await nsq.publishMany(topic, after);
  const all = [...before, "spin", ...after];
  await waitFor(() => all.every((id) => runs.has(id)), { message: "every message handled" });
  await waitFor(async () => {
    const channel = await nsq.channel(topic, CHANNEL);
    return channel?.depth === 0 && channel.in_flight_count === 0;
  }, { message: "nothing left in nsqd", timeoutMs: 15_000 });
  await supervisor.shutdown();

  const outcomes = supervisor.entries[0]!.stats.snapshot().outcomes;
  const channel = (await nsq.channel(topic, CHANNEL))!;
  assert.deepEqual([...runs.values()].filter((n) => n !== 1), [], "a handler ran twice");
  assert.ok(outcomes.duplicate >= 1, "the redelivered message was recognised as handled");
  reportFigures("event_loop_blocked", {
    blocked_ms: blockedMs,
    heartbeat_ms: 1_000,
    connection_lost: lost()[0]!.error,
    redelivered_by_nsqd: channel.timeout_count,
    caught_by_dedupe: outcomes.duplicate,
    handled_twice: 0,
  });
});

Deno.test("handlers that allocate 16 MiB each never run more than max_in_flight at once", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("alloc");
  await nsq.createChannel(topic, CHANNEL);
  const count = 120;
  await nsq.publishMany(topic, makeIds("m", count));
  let running = 0;
  let mostRunning = 0;
  let handled = 0;
  const rssBefore = Deno.memoryUsage().rss;
  let rssPeak = rssBefore;
  await using daemon = await startInProcess({
    yaml: yaml(nsq, topic, { max_in_flight: 4 }),
    workers: {
      faulty: {
        decode: "text",
        async handle() {
          mostRunning = Math.max(mostRunning, ++running);
          const block = new Uint8Array(16 * 1024 * 1024).fill(7);
          await new Promise((resolve) => setTimeout(resolve, 10));
          rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
          running--;
          handled += block[block.length - 1] === 7 ? 1 : 0;
        },
      },
    },
  });
  await waitFor(() => handled === count, { timeoutMs: 20_000, message: "all handled" });
  await daemon.shutdown();
  assert.ok(mostRunning <= 4, `${mostRunning} handlers at once`);
  assert.ok(mostRunning >= 2, "handlers ran concurrently");
  const growthMiB = Math.round((rssPeak - rssBefore) / 2 ** 20);
  // Unbounded, 120 × 16 MiB would be live at once.
  assert.ok(growthMiB < 1_000, `RSS grew by ${growthMiB} MiB`);
  reportFigures("wild_allocation", {
    messages: count,
    max_in_flight: 4,
    most_running: mostRunning,
    rss_growth_mib: growthMiB,
  });
});
