/**
 * The batcher with the task runner in front of it, without nsqd: when
 * batches are handed over, and how `handleBatch`'s results, throws, wrong
 * results, timeouts and drains become each item's outcome.
 */
import assert from "node:assert/strict";
import { MemoryStore } from "../../src/dedupe/memory_store.ts";
import { PermanentError } from "../../src/worker/permanent_error.ts";
import { Batcher, type BatcherOptions, type BatchReport } from "../../src/batch/batcher.ts";
import type { Outcome } from "../../src/runner/outcome.ts";
import { type TaskMessage, TaskRunner } from "../../src/runner/task_runner.ts";
import type { BatchContext, BatchItem, Logger, WorkerDefinition } from "../../src/worker/worker.ts";
import { fakeContext } from "../helpers/fakes.ts";
import { waitFor } from "../helpers/nsq.ts";

const encoder = new TextEncoder();
const SCOPE = "sink/batch";

interface Harness {
  run(message: TaskMessage): Promise<Outcome>;
  readonly batcher: Batcher;
  /** Messages the runner has had join a batch. */
  readonly joined: number;
  readonly reports: BatchReport[];
  readonly errors: string[];
  readonly signals: AbortSignal[];
}

function harness(
  handleBatch: NonNullable<WorkerDefinition["handleBatch"]>,
  options: Partial<Pick<BatcherOptions, "size" | "waitMs" | "timeoutMs">> & {
    worker?: Partial<WorkerDefinition>;
    stop?: AbortSignal;
  } = {},
): Harness {
  const store = new MemoryStore({ capacity: 1_000, ttlMs: 60_000 });
  const reports: BatchReport[] = [];
  const errors: string[] = [];
  const signals: AbortSignal[] = [];
  const timeoutMs = options.timeoutMs ?? 5_000;
  const worker: WorkerDefinition = { handleBatch, ...options.worker };
  const log: Logger = {
    debug() {},
    info() {},
    warning() {},
    error: (message) => void errors.push(message),
  };
  // deno-lint-ignore prefer-const
  let batcher: Batcher;
  let joined = 0;
  const runner = new TaskRunner({
    worker,
    scope: SCOPE,
    settings: { maxAttempts: 3, requeueDelayMs: 100, maxRequeueDelayMs: 1_000, timeoutMs },
    store,
    context: (message, signal) => fakeContext(message, signal),
    random: () => 0.5,
    join: (attempt) => {
      joined++;
      return batcher.join(attempt);
    },
  });
  batcher = new Batcher({
    handleBatch,
    size: options.size ?? 3,
    waitMs: options.waitMs ?? 50,
    timeoutMs,
    store,
    settle: (attempt, state, error, durationMs) => runner.settle(attempt, state, error, durationMs),
    context: (touch, signal) => {
      signals.push(signal);
      const { message: _, ...ctx } = fakeContext(message(0), signal);
      return { ...ctx, signal, touch } as BatchContext;
    },
    onBatch: (report) => void reports.push(report),
    log,
  });
  return {
    run: (m) => Promise.resolve(runner.run(m, options.stop)),
    batcher,
    get joined() {
      return joined;
    },
    reports,
    errors,
    signals,
  };
}

let ids = 0;
function message(
  body: unknown,
  fields: { attempts?: number; msgTimeoutMs?: number; onTouch?: () => void } = {},
): TaskMessage {
  return {
    id: (ids++).toString(16).padStart(16, "0"),
    attempts: fields.attempts ?? 1,
    timestamp: 1_700_000_000_000,
    body: encoder.encode(JSON.stringify(body)),
    msgTimeoutMs: fields.msgTimeoutMs ?? 60_000,
    idScope: SCOPE,
    touch: () => fields.onTouch?.(),
  };
}

const kinds = (outcomes: Outcome[]) => outcomes.map((o) => o.kind);

Deno.test("a full batch is handed over at once; every item finished when handleBatch returns nothing", async () => {
  const calls: number[][] = [];
  const h = harness((items: readonly BatchItem<number>[]) => {
    calls.push(items.map((item) => item.body));
  }, { size: 3, waitMs: 60_000 });
  const outcomes = await Promise.all([1, 2, 3].map((n) => h.run(message(n))));
  assert.deepEqual(calls, [[1, 2, 3]]);
  assert.deepEqual(kinds(outcomes), ["finish", "finish", "finish"]);
  assert.deepEqual(h.reports.map((r) => [r.items, r.state]), [[3, "returned"]]);
});

Deno.test("a partial batch is handed over once wait has passed since its first item", async () => {
  const calls: number[] = [];
  const h = harness((items) => {
    calls.push(items.length);
  }, { size: 10, waitMs: 80 });
  const started = performance.now();
  const outcomes = await Promise.all([h.run(message(1)), h.run(message(2))]);
  const waited = performance.now() - started;
  assert.deepEqual(calls, [2]);
  assert.deepEqual(kinds(outcomes), ["finish", "finish"]);
  assert.ok(waited >= 75, `handed over after ${waited} ms, before the wait`);
});

Deno.test("per-item results: finish, retry with the item's own attempts, dead letter as permanent", async () => {
  const h = harness(() => [undefined, "finish", new Error("later"), new PermanentError("never")], {
    size: 4,
  });
  const outcomes = await Promise.all([
    h.run(message(1)),
    h.run(message(2)),
    h.run(message(3, { attempts: 2 })),
    h.run(message(4)),
  ]);
  assert.deepEqual(kinds(outcomes), ["finish", "finish", "retry", "dead"]);
  // requeue_delay 100 ms doubles from the first attempt: the second attempt's retry waits 200 ms.
  assert.equal((outcomes[2] as { delayMs: number }).delayMs, 200);
  assert.equal((outcomes[2] as { error: string }).error, "later");
  assert.deepEqual(
    [(outcomes[3] as { reason: string }).reason, (outcomes[3] as { error: string }).error],
    ["permanent", "never"],
  );
});

Deno.test("invalid and duplicate messages never join a batch", async () => {
  const bodies: unknown[] = [];
  const h = harness((items) => {
    for (const item of items) bodies.push(item.body);
  }, {
    size: 2,
    waitMs: 20,
    worker: {
      validate: (body: { ok: boolean }) => body.ok,
      dedupeKey: (body: { key: string }) => body.key,
    },
  });
  const first = await Promise.all([
    h.run(message({ ok: true, key: "a" })),
    h.run(message({ ok: false, key: "b" })),
  ]);
  const again = await h.run(message({ ok: true, key: "a" }));
  assert.deepEqual(kinds(first), ["finish", "dead"]);
  assert.equal(again.kind, "duplicate");
  assert.deepEqual(bodies, [{ ok: true, key: "a" }]);
});

Deno.test("a throw retries every item; at max_attempts they are dead-lettered", async () => {
  const h = harness(() => Promise.reject(new Error("bulk insert failed")), { size: 2 });
  const outcomes = await Promise.all([h.run(message(1)), h.run(message(2, { attempts: 3 }))]);
  assert.deepEqual(kinds(outcomes), ["retry", "dead"]);
  assert.equal((outcomes[1] as { reason: string }).reason, "max_attempts");
  assert.deepEqual(h.reports.map((r) => r.state), ["threw"]);
});

Deno.test("a wrong number of results is a worker bug: every item retried, one error logged", async () => {
  const h = harness(() => [undefined], { size: 3 });
  const outcomes = await Promise.all([1, 2, 3].map((n) => h.run(message(n))));
  assert.deepEqual(kinds(outcomes), ["retry", "retry", "retry"]);
  assert.match(
    (outcomes[0] as { error: string }).error,
    /one result per item \(3\), got 1 results/,
  );
  assert.equal(h.errors.length, 1);
});

Deno.test("timeout applies to the handleBatch call: ctx.signal aborts and every item is retried", async () => {
  const h = harness(
    (_items, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
      ),
    {
      size: 2,
      timeoutMs: 50,
    },
  );
  const outcomes = await Promise.all([h.run(message(1)), h.run(message(2))]);
  assert.deepEqual(kinds(outcomes), ["retry", "retry"]);
  assert.match((outcomes[0] as { error: string }).error, /timed out after 50ms/);
  assert.equal(h.signals[0]!.aborted, true);
});

Deno.test("waiting and running items are touched at half the message timeout", async () => {
  let touches = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const h = harness(() => released, { size: 5, waitMs: 150, timeoutMs: 10_000 });
  const onTouch = () => touches++;
  const pending = Promise.all([
    h.run(message(1, { msgTimeoutMs: 60, onTouch })),
    h.run(message(2, { msgTimeoutMs: 60, onTouch })),
  ]);
  // Waiting 150 ms with a 30 ms period, then running: touches keep coming while it runs.
  const deadline = performance.now() + 5_000;
  while (touches < 16 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(touches >= 16, `only ${touches} touches`);
  assert.equal(h.reports.length, 0, "still running");
  release();
  assert.deepEqual(kinds(await pending), ["finish", "finish"]);
});

Deno.test("drain hands the partial batch over at once", async () => {
  const calls: number[] = [];
  const h = harness((items) => {
    calls.push(items.length);
  }, { size: 10, waitMs: 60_000 });
  const pending = Promise.all([h.run(message(1)), h.run(message(2))]);
  await waitFor(() => h.joined === 2, { message: "both in the batch" });
  h.batcher.drain();
  assert.deepEqual(kinds(await pending), ["finish", "finish"]);
  assert.deepEqual(calls, [2]);
});
