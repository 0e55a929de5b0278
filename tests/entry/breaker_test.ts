/**
 * The circuit breaker as a state machine on a fake clock, and the guard that
 * turns its states into RDY and excused attempts, without nsqd.
 */
import assert from "node:assert/strict";
import { Breaker } from "../../src/entry/breaker.ts";
import { BreakerGuard, runResult } from "../../src/entry/breaker_guard.ts";
import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import type { Outcome } from "../../src/runner/outcome.ts";
import type { Logger } from "../../src/worker/worker.ts";

const SETTINGS = { failureRate: 0.5, minRuns: 4, windowMs: 10_000, openForMs: 2_000 };

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => now += ms };
}

Deno.test("the breaker opens at failure_rate of at least min_runs in the window", () => {
  const time = clock();
  const breaker = new Breaker(SETTINGS, time.now);
  assert.equal(breaker.record("failed"), null);
  assert.equal(breaker.record("failed"), null);
  assert.equal(breaker.record("failed"), null, "3 failed of 3: fewer than min_runs");
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.failureRate(), 1);
  assert.equal(breaker.record("ok"), "open", "3 failed of 4: 75 % ≥ 50 %");
  assert.equal(breaker.openedAt, 1_000_000);
  assert.equal(breaker.failureRate(), 0.75, "the share that opened it");
  assert.equal(breaker.record("failed"), null, "an open breaker counts no runs");
});

Deno.test("below failure_rate, or with runs older than the window, it stays closed", () => {
  const time = clock();
  const breaker = new Breaker(SETTINGS, time.now);
  for (const result of ["ok", "failed", "ok", "ok", "failed", "ok"] as const) {
    assert.equal(breaker.record(result), null);
  }
  assert.equal(breaker.failureRate(), 2 / 6);
  const old = new Breaker(SETTINGS, time.now);
  for (let i = 0; i < 3; i++) old.record("failed");
  time.advance(11_000);
  assert.equal(old.record("failed"), null, "the first three left the window");
  assert.deepEqual(old.window(), { runs: 1, failures: 1 });
  assert.equal(old.state, "closed");
});

Deno.test("open_for later it is half open: one probe; success closes, failure reopens", () => {
  const time = clock();
  const breaker = new Breaker(SETTINGS, time.now);
  for (let i = 0; i < 4; i++) breaker.record("failed");
  assert.equal(breaker.state, "open");
  assert.equal(breaker.takeProbe(), false, "open: nothing goes through");
  time.advance(1_999);
  assert.equal(breaker.msUntilHalfOpen(), 1);
  assert.equal(breaker.poll(), null);
  time.advance(1);
  assert.equal(breaker.poll(), "half_open");
  assert.equal(breaker.msUntilHalfOpen(), null);
  assert.equal(breaker.takeProbe(), true);
  assert.equal(breaker.takeProbe(), false, "exactly one message while half open");
  assert.equal(breaker.record("ok"), null, "a straggler's run does not close it");
  assert.equal(breaker.probeEnded("failed"), "open");
  assert.equal(breaker.openedAt, time.now(), "open_for counts from the failed probe");
  assert.equal(breaker.failureRate(), 1);

  time.advance(2_000);
  assert.equal(breaker.poll(), "half_open");
  assert.equal(breaker.takeProbe(), true);
  assert.equal(breaker.probeEnded(null), null, "a probe that did not run frees the way");
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.takeProbe(), true);
  assert.equal(breaker.probeEnded("ok"), "closed");
  assert.equal(breaker.openedAt, null);
  assert.deepEqual(breaker.window(), { runs: 0, failures: 0 }, "closed afresh");
  for (let i = 0; i < 3; i++) assert.equal(breaker.record("failed"), null);
});

Deno.test("how outcomes count: throws and timeouts fail; checks, PermanentError and duplicates do not run", () => {
  const cases: [Outcome, string | null][] = [
    [{ kind: "finish", durationMs: 1 }, "ok"],
    [{ kind: "retry", delayMs: 5, error: "boom", durationMs: 3 }, "failed"],
    [{ kind: "dead", reason: "max_attempts", error: "boom", durationMs: 3 }, "failed"],
    [{ kind: "retry", delayMs: 5, error: "store down", durationMs: null }, null],
    [{ kind: "dead", reason: "max_attempts", error: "beyond", durationMs: null }, null],
    [{ kind: "dead", reason: "permanent", error: "bad body", durationMs: 2 }, null],
    [{ kind: "dead", reason: "validate", error: "bad", durationMs: null }, null],
    [{ kind: "dead", reason: "decode", error: "bad", durationMs: null }, null],
    [{ kind: "duplicate" }, null],
    [{ kind: "busy", delayMs: 1000 }, null],
    [{ kind: "interrupted", durationMs: 4 }, null],
  ];
  for (const [outcome, expected] of cases) {
    assert.equal(runResult(outcome), expected, JSON.stringify(outcome));
  }
});

/** A delivery as the guard sees it, recording its requeue. */
function delivery(id: string, attempts: number) {
  const requeued: number[] = [];
  const message = {
    id,
    attempts,
    idScope: "t/c@127.0.0.1:4150",
    body: new Uint8Array(),
    timestamp: 0,
    msgTimeoutMs: 60_000,
    touch() {},
    requeue(delayMs: number) {
      requeued.push(delayMs);
      return true;
    },
  } as unknown as NsqMessage;
  return { message, requeued };
}

const quiet: Logger = { debug() {}, info() {}, warning() {}, error() {} };
const FAILED: Outcome = { kind: "retry", delayMs: 100, error: "ECONNREFUSED", durationMs: 5 };

Deno.test("the guard holds the consumer, turns away what arrives while open and excuses it", () => {
  const time = clock();
  const admitted: (number | null)[] = [];
  const lines: string[] = [];
  const log: Logger = { ...quiet, info: (m) => lines.push(m), warning: (m) => lines.push(m) };
  const guard = new BreakerGuard({
    settings: { ...SETTINGS, minRuns: 2, openForMs: 60_000 },
    requeue: { requeueDelayMs: 100, maxRequeueDelayMs: 1_000 },
    consumer: { admit: (count) => admitted.push(count) },
    log,
    now: time.now,
  });
  try {
    const a = delivery("a", 1);
    const b = delivery("b", 3);
    assert.equal(guard.refuse(a.message), false);
    assert.equal(guard.settle(a.message, FAILED), FAILED, "failed while closed: counts");
    // b's failure opens the breaker: it failed while closed, so it counts.
    assert.equal(guard.refuse(b.message), false);
    assert.equal(guard.settle(b.message, FAILED).kind, "retry");
    assert.deepEqual(admitted, [0], "opened by the second failure: RDY 0");
    assert.equal(lines.at(-1), "breaker open: too many handler runs failed; taking no messages");
    const lastAttempt: Outcome = {
      kind: "dead",
      reason: "max_attempts",
      error: "x",
      durationMs: 5,
    };
    const c = delivery("c", 3);
    const settled = guard.settle(c.message, lastAttempt);
    assert.equal(settled.kind, "retry", "a last attempt failed while open is retried, not dead");
    assert.equal(guard.task(c.message).attempts, 2, "and its delivery is excused");

    const late = delivery("late", 2);
    assert.equal(guard.refuse(late.message), true, "sent before nsqd read RDY 0");
    assert.deepEqual(late.requeued, [0], "back at once: RDY 0 keeps it on nsqd");
    assert.equal(guard.task(late.message).attempts, 1);
    assert.equal(guard.task(a.message), a.message, "a's failure while closed counts");
    assert.deepEqual(guard.snapshot().transitions, { closed: 0, open: 1, half_open: 0 });
    assert.equal(guard.snapshot().excused, 2);
    assert.equal(guard.snapshot().state, "open");
  } finally {
    guard.close();
  }
});

Deno.test("the guard lets one message through when half open, and its outcome decides", async () => {
  const admitted: (number | null)[] = [];
  const guard = new BreakerGuard({
    settings: { ...SETTINGS, minRuns: 1, openForMs: 100 },
    requeue: { requeueDelayMs: 100, maxRequeueDelayMs: 1_000 },
    consumer: { admit: (count) => admitted.push(count) },
    log: quiet,
  });
  try {
    guard.settle(delivery("a", 1).message, FAILED);
    assert.equal(guard.state, "open");
    const { promise, resolve } = Promise.withResolvers<void>();
    const waited = setInterval(() => guard.state === "half_open" && resolve(), 5);
    await promise;
    clearInterval(waited);
    assert.deepEqual(admitted, [0, 1], "half open: one message may come");
    const probe = delivery("probe", 4);
    const other = delivery("other", 1);
    assert.equal(guard.refuse(probe.message), false, "the first goes through");
    assert.deepEqual(admitted, [0, 1, 0], "and no other until its outcome");
    assert.equal(guard.refuse(other.message), true);
    assert.equal(guard.settle(probe.message, FAILED).kind, "retry");
    assert.equal(guard.state, "open");
    assert.equal(guard.task(probe.message).attempts, 3, "the failed probe is excused");
    assert.equal(admitted.at(-1), 0);
  } finally {
    guard.close();
  }
});
