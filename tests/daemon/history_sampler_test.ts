import assert from "node:assert/strict";
import { HistorySampler, type SampledEntry } from "../../src/daemon/history_sampler.ts";
import { EntryStats } from "../../src/observe/entry_stats.ts";

function entry(topic: string, stats = new EntryStats()): SampledEntry {
  return { entry: { topic, channel: "c" }, stats };
}

Deno.test("HistorySampler: one sample per entry and round, kept by topic and channel across a restart", () => {
  let now = 1000;
  const a = entry("a");
  let entries = [a, entry("b")];
  const sampler = new HistorySampler(() => entries, { intervalMs: 60_000, now: () => now });
  sampler.start();
  try {
    a.stats.record({ kind: "finish", durationMs: 2 });
    a.stats.record({ kind: "retry", delayMs: 1, error: "x", durationMs: 2 });
    now = 6000;
    sampler.sample();
    assert.equal(sampler.taken, 1);
    assert.deepEqual(sampler.history("a", "c")?.samples(), [
      { at: 6000, answered: 2, failed: 1, p50Ms: 2, p99Ms: 2 },
    ]);
    assert.equal(sampler.history("b", "c")?.latest()?.answered, 0);

    // A reload restarts "a" (fresh counters) and drops "b"; "c" is new.
    const restarted = entry("a");
    restarted.stats.record({ kind: "finish", durationMs: 1 });
    entries = [restarted, entry("c")];
    now = 11_000;
    sampler.sample();
    assert.deepEqual(sampler.history("a", "c")?.samples().map((s) => s.answered), [2, 1]);
    assert.equal(sampler.history("b", "c"), null);
    // A new entry's first interval starts at its first sample.
    assert.equal(sampler.history("c", "c")?.size, 0);
  } finally {
    sampler.stop();
    sampler.stop();
  }
});

Deno.test("HistorySampler samples on its timer", async () => {
  const a = entry("a");
  const sampler = new HistorySampler(() => [a], { intervalMs: 10 });
  sampler.start();
  try {
    a.stats.record({ kind: "finish", durationMs: 1 });
    while (sampler.taken < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const answered = sampler.history("a", "c")!.samples().reduce((n, s) => n + s.answered, 0);
    assert.equal(answered, 1);
  } finally {
    sampler.stop();
  }
});
