/**
 * `dedupe.on_store_error`: what the task runner decides when the dedupe
 * store fails to answer a claim, and how the entry's figures count it.
 */

import assert from "node:assert/strict";
import type { DedupeStore } from "../../src/dedupe/store.ts";
import { EntryStats } from "../../src/observe/entry_stats.ts";
import { PermanentError } from "../../src/worker/permanent_error.ts";
import type { Outcome } from "../../src/runner/outcome.ts";
import { type TaskMessage, TaskRunner } from "../../src/runner/task_runner.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { fakeContext } from "../helpers/fakes.ts";

const SCOPE = "pageviews/counter";

interface BrokenStore extends DedupeStore {
  readonly calls: string[];
}

/** A store whose claims fail, recording every other call. */
function brokenStore(onError?: "retry" | "process"): BrokenStore {
  const calls: string[] = [];
  return {
    ...(onError ? { onError } : {}),
    calls,
    claim: () => Promise.reject(new Error("redis 127.0.0.1:6379 is unreachable: ECONNREFUSED")),
    done: (_scope, key, token) => void calls.push(`done ${key} ${JSON.stringify(token)}`),
    release: (_scope, key) => void calls.push(`release ${key}`),
    renew: (_scope, key) => void calls.push(`renew ${key}`),
    close: () => Promise.resolve(),
  };
}

function runner(store: DedupeStore, worker: WorkerDefinition): TaskRunner {
  return new TaskRunner({
    worker,
    scope: SCOPE,
    settings: { maxAttempts: 3, requeueDelayMs: 100, maxRequeueDelayMs: 10_000, timeoutMs: 5_000 },
    store,
    context: fakeContext,
    random: () => 0.5,
  });
}

function message(attempts = 1, msgTimeoutMs = 60_000): TaskMessage {
  return {
    id: "0a1b2c3d4e5f6789",
    attempts,
    timestamp: 1_700_000_000_000,
    body: new TextEncoder().encode('{"event_id":"e1"}'),
    msgTimeoutMs,
    touch() {},
    idScope: `${SCOPE}@127.0.0.1:4150`,
  };
}

const FAILURE = "redis 127.0.0.1:6379 is unreachable: ECONNREFUSED";

function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

test("on_store_error retry (the default): requeued with backoff, handler not run", async () => {
  for (const store of [brokenStore(), brokenStore("retry")]) {
    let runs = 0;
    const outcome = await runner(store, { handle: () => void runs++ }).run(message(2));
    assert.deepEqual(outcome, {
      kind: "retry",
      delayMs: 200,
      error: `dedupe store failed: ${FAILURE}`,
      durationMs: null,
      storeFailure: { error: FAILURE, bypassed: false },
    });
    assert.equal(runs, 0);
    assert.deepEqual(store.calls, []);
  }
});

test("on_store_error process: the handler runs without dedupe, and the outcome says so", async () => {
  const store = brokenStore("process");
  const bodies: unknown[] = [];
  const outcome = await runner(store, {
    dedupeKey: (body: { event_id: string }) => body.event_id,
    handle: (body) => void bodies.push(body),
  }).run(message());
  assert.equal(outcome.kind, "finish");
  assert.deepEqual((outcome as Outcome & { kind: "finish" }).storeFailure, {
    error: FAILURE,
    bypassed: true,
  });
  assert.deepEqual(bodies, [{ event_id: "e1" }]);
  // The done mark is still tried (the store may be back); the empty token owns nothing.
  assert.deepEqual(store.calls, ['done e1 ""']);
});

test("on_store_error process: failures keep their usual outcome, with nothing to release or renew", async () => {
  const store = brokenStore("process");
  const failing = runner(store, {
    // Longer than a touch period (msgTimeoutMs / 2), so the timer ticks while it runs.
    handle: () => new Promise((_, reject) => setTimeout(reject, 40, new Error("boom"))),
  });
  const retry = await failing.run(message(1, 40));
  assert.equal(retry.kind, "retry");
  assert.equal((retry as Outcome & { kind: "retry" }).error, "boom");
  assert.ok(typeof (retry as Outcome & { kind: "retry" }).durationMs === "number");
  assert.deepEqual((retry as Outcome & { kind: "retry" }).storeFailure, {
    error: FAILURE,
    bypassed: true,
  });

  const permanent = runner(store, {
    handle: () => {
      throw new PermanentError("bad event");
    },
  });
  const dead = await permanent.run(message());
  assert.equal(dead.kind, "dead");
  assert.equal((dead as Outcome & { kind: "dead" }).storeFailure?.bypassed, true);
  assert.deepEqual(store.calls, []);

  const stop = new AbortController();
  stop.abort();
  const slow = runner(store, { handle: () => new Promise<void>(() => {}) });
  assert.equal((await slow.run(message(), stop.signal)).kind, "interrupted");
});

test("on_store_error process: a delivery beyond max_attempts is dead without running the handler", async () => {
  const store = brokenStore("process");
  let runs = 0;
  const outcome = await runner(store, { handle: () => void runs++ }).run(message(4));
  assert.deepEqual(outcome, {
    kind: "dead",
    reason: "max_attempts",
    error: "attempt 4 is beyond max_attempts 3: the handler is not run again",
    durationMs: null,
    storeFailure: { error: FAILURE, bypassed: true },
  });
  assert.equal(runs, 0);
  // Nothing was claimed, so nothing is released, and no handler run to mark done.
  assert.deepEqual(store.calls, []);
});

test("entry stats count store failures and bypassed messages", () => {
  const stats = new EntryStats();
  const failure = { error: FAILURE, bypassed: false };
  stats.record({ kind: "retry", delayMs: 1, error: "x", durationMs: null, storeFailure: failure });
  stats.record({ kind: "finish", durationMs: 2, storeFailure: { ...failure, bypassed: true } });
  stats.record({ kind: "finish", durationMs: 2 });
  const snapshot = stats.snapshot();
  assert.equal(snapshot.storeFailures, 2);
  assert.equal(snapshot.dedupeBypassed, 1);
  assert.equal(snapshot.outcomes.finish, 2);
  assert.equal(snapshot.outcomes.retry, 1);
});
