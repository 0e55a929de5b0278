import assert from "node:assert/strict";
import { BatchStats } from "../../src/observe/batch_stats.ts";
import { statsJson } from "../../src/daemon/http/stats_json.ts";
import { renderMetrics } from "../../src/daemon/http/metrics.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";

Deno.test("batch figures: batches, items per batch and duration in /metrics and /stats", () => {
  const stats = new BatchStats(100, 200);
  stats.record(100, 12);
  stats.record(7, 3_000);
  const snapshot = fakeSnapshot([fakeEntry({ batches: stats.snapshot() })]);
  const text = renderMetrics(snapshot);
  const labels = 'topic="pageviews",channel="counter"';
  assert.match(text, new RegExp(`^nsqworker_batches_total\\{${labels}\\} 2$`, "m"));
  assert.match(text, new RegExp(`^nsqworker_batch_items_bucket\\{${labels},le="10"\\} 1$`, "m"));
  assert.match(text, new RegExp(`^nsqworker_batch_items_bucket\\{${labels},le="100"\\} 2$`, "m"));
  assert.match(text, new RegExp(`^nsqworker_batch_items_sum\\{${labels}\\} 107$`, "m"));
  assert.match(
    text,
    new RegExp(`^nsqworker_batch_duration_seconds_bucket\\{${labels},le="0.025"\\} 1$`, "m"),
  );
  assert.match(
    text,
    new RegExp(`^nsqworker_batch_duration_seconds_sum\\{${labels}\\} 3.012$`, "m"),
  );
  const json = statsJson(snapshot) as { entries: Record<string, unknown>[] };
  assert.deepEqual(
    (json.entries[0]!.batches as Record<string, unknown>).count,
    2,
  );
});

Deno.test("no batch families when no entry batches", () => {
  assert.doesNotMatch(renderMetrics(fakeSnapshot()), /nsqworker_batch/);
});
