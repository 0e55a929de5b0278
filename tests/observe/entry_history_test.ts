import assert from "node:assert/strict";
import { EntryHistory, historySample } from "../../src/observe/entry_history.ts";
import { EntryStats } from "../../src/observe/entry_stats.ts";

const sample = (at: number, answered = at) => ({
  at,
  answered,
  failed: 0,
  p50Ms: null,
  p99Ms: null,
});

Deno.test("EntryHistory keeps the last samples, oldest first, nulls intact", () => {
  const history = new EntryHistory(3);
  assert.equal(history.latest(), null);
  assert.deepEqual(history.samples(), []);
  for (let at = 1; at <= 5; at++) history.push(sample(at));
  assert.equal(history.size, 3);
  assert.deepEqual(history.samples().map((s) => s.at), [3, 4, 5]);
  assert.deepEqual(history.latest(), sample(5));
  history.push({ at: 6, answered: 2, failed: 1, p50Ms: 5, p99Ms: 250 });
  assert.deepEqual(history.latest(), { at: 6, answered: 2, failed: 1, p50Ms: 5, p99Ms: 250 });
});

Deno.test("EntryHistory refuses a capacity that is not a positive integer", () => {
  assert.throws(() => new EntryHistory(0), {
    name: "RangeError",
    message: "capacity must be a positive integer: current value is 0",
  });
});

Deno.test("historySample: the interval's counts and its own quantiles, not the whole life's", () => {
  const stats = new EntryStats();
  for (let i = 0; i < 100; i++) stats.record({ kind: "finish", durationMs: 0.5 });
  const before = stats.snapshot();
  for (let i = 0; i < 9; i++) stats.record({ kind: "finish", durationMs: 400 });
  stats.record({ kind: "retry", delayMs: 10, error: "x", durationMs: 4000 });
  stats.record({ kind: "dead", reason: "max_attempts", error: "x", durationMs: 400 });
  stats.record({ kind: "duplicate" });
  const s = historySample(before, stats.snapshot(), 1234);
  assert.deepEqual(s, { at: 1234, answered: 12, failed: 2, p50Ms: 500, p99Ms: 5000 });
  // Over the whole life the median is still the 100 fast ones.
  assert.equal(stats.snapshot().durationP50Ms, 1);
});

Deno.test("historySample: counters lower than before (a restarted entry) count from zero", () => {
  const old = new EntryStats();
  for (let i = 0; i < 50; i++) old.record({ kind: "finish", durationMs: 1 });
  const fresh = new EntryStats();
  fresh.record({ kind: "finish", durationMs: 20 });
  fresh.record({ kind: "finish", durationMs: 20 });
  const s = historySample(old.snapshot(), fresh.snapshot(), 1);
  assert.deepEqual(s, { at: 1, answered: 2, failed: 0, p50Ms: 25, p99Ms: 25 });
  assert.equal(historySample(null, fresh.snapshot(), 1).answered, 2);
  const idle = historySample(fresh.snapshot(), fresh.snapshot(), 2);
  assert.deepEqual(idle, { at: 2, answered: 0, failed: 0, p50Ms: null, p99Ms: null });
});
