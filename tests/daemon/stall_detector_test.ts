/** When the stall watchdog counts the daemon's thread as stalled. */
import assert from "node:assert/strict";
import { heartbeatPeriodMs, StallDetector } from "../../src/daemon/stall_detector.ts";

/** Looks every `period` from `from` to `to` with the heartbeat at `beat`; the first stall seen. */
function look(
  detector: StallDetector,
  beat: number,
  from: number,
  to: number,
  period: number,
): { at: number; stalledMs: number } | null {
  for (let now = from; now <= to; now += period) {
    const stalledMs = detector.stalledFor(beat, now);
    if (stalledMs !== null) return { at: now, stalledMs };
  }
  return null;
}

Deno.test("the heartbeat's period: a tenth of stall_timeout, from 50ms to 1s", () => {
  assert.equal(heartbeatPeriodMs(1_000), 100);
  assert.equal(heartbeatPeriodMs(2_000), 200);
  assert.equal(heartbeatPeriodMs(30_000), 1_000);
  assert.equal(heartbeatPeriodMs(3_600_000), 1_000);
  assert.equal(heartbeatPeriodMs(100), 50);
});

Deno.test("stalled once the heartbeat has not moved for stall_timeout plus one period", () => {
  const detector = new StallDetector(2_000, 0);
  assert.equal(look(detector, 1, 0, 10_000, 200)?.at, 2_400);
  // A beat starts the wait over.
  const again = new StallDetector(2_000, 0);
  assert.equal(look(again, 1, 0, 2_000, 200), null);
  assert.deepEqual(look(again, 2, 2_200, 10_000, 200), { at: 4_600, stalledMs: 2_400 });
});

Deno.test("a heartbeat that moves is never a stall", () => {
  const detector = new StallDetector(2_000, 0);
  for (let now = 0, beat = 0; now < 60_000; now += 100) {
    if (now % 1_900 === 0) beat++;
    assert.equal(detector.stalledFor(beat, now), null, `at ${now}`);
  }
});

Deno.test("a look that comes late (the process was stopped) starts the wait over", () => {
  const detector = new StallDetector(2_000, 0);
  assert.equal(look(detector, 1, 0, 1_000, 200), null);
  // Nothing ran for 5s, this thread included: no stall yet.
  assert.equal(detector.stalledFor(1, 6_000), null);
  assert.equal(look(detector, 1, 6_200, 20_000, 200)?.at, 8_400);
});

Deno.test("a new stall_timeout applies to the wait under way", () => {
  const detector = new StallDetector(30_000, 0);
  assert.equal(look(detector, 1, 0, 1_000, 100), null);
  detector.stallTimeoutMs = 1_000;
  assert.equal(look(detector, 1, 1_100, 10_000, 100)?.at, 1_200);
});
