import assert from "node:assert/strict";
import { statsJson } from "../../src/daemon/http/stats_json.ts";
import { renderMetrics } from "../../src/daemon/http/metrics.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";

const LABELS = 'topic="pageviews",channel="counter"';

Deno.test("the breaker in /metrics and /stats: its state, transitions and excused deliveries", () => {
  const openedAt = Date.UTC(2025, 0, 2, 3, 4, 5);
  const snapshot = fakeSnapshot([fakeEntry({
    breaker: {
      state: "open",
      openedAt,
      failureRate: 0.75,
      runs: 0,
      transitions: { closed: 1, open: 3, half_open: 2 },
      excused: 7,
    },
  })]);
  const text = renderMetrics(snapshot);
  const sample = (name: string, labels: string, value: number) =>
    assert.match(text, new RegExp(`^${name}\\{${labels}\\} ${value}$`, "m"));
  sample("nsqworker_breaker_state", `${LABELS},state="open"`, 1);
  sample("nsqworker_breaker_state", `${LABELS},state="closed"`, 0);
  sample("nsqworker_breaker_state", `${LABELS},state="half_open"`, 0);
  sample("nsqworker_breaker_transitions_total", `${LABELS},to="open"`, 3);
  sample("nsqworker_breaker_transitions_total", `${LABELS},to="half_open"`, 2);
  sample("nsqworker_breaker_excused_total", LABELS, 7);
  const json = statsJson(snapshot) as { entries: Record<string, unknown>[] };
  assert.deepEqual(json.entries[0]!.breaker, {
    state: "open",
    opened_at: "2025-01-02T03:04:05.000Z",
    failure_rate: 0.75,
    runs: 0,
    transitions: { closed: 1, open: 3, half_open: 2 },
    excused_deliveries: 7,
  });
});

Deno.test("a shared rate limit in /metrics and /stats: kept in redis, or by this process alone", () => {
  for (const inRedis of [true, false]) {
    const snapshot = fakeSnapshot([fakeEntry({ rateShared: inRedis })]);
    assert.match(
      renderMetrics(snapshot),
      new RegExp(`^nsqworker_rate_limit_shared\\{${LABELS}\\} ${inRedis ? 1 : 0}$`, "m"),
    );
    const json = statsJson(snapshot) as { entries: Record<string, unknown>[] };
    assert.deepEqual(json.entries[0]!.rate_limit, { shared: true, in_redis: inRedis });
  }
});

Deno.test("no breaker or shared rate families, nor keys in /stats, for entries without them", () => {
  const snapshot = fakeSnapshot();
  assert.doesNotMatch(renderMetrics(snapshot), /nsqworker_breaker|nsqworker_rate_limit_shared/);
  const json = statsJson(snapshot) as { entries: Record<string, unknown>[] };
  assert.equal("breaker" in json.entries[0]!, false);
  assert.equal("rate_limit" in json.entries[0]!, false);
});
