import assert from "node:assert/strict";
import { requeueDelay } from "../../src/runner/requeue_delay.ts";

const SETTINGS = { requeueDelayMs: 100, maxRequeueDelayMs: 10_000 };
const middle = () => 0.5; // jitter factor 1
const lowest = () => 0; // jitter factor 0.75

Deno.test("a retry and an unpublished dead letter both back off: doubled per attempt, jittered, capped", () => {
  for (const reason of ["retry", "dead_letter"] as const) {
    assert.deepEqual(
      [1, 2, 3, 8].map((attempts) => requeueDelay(reason, attempts, SETTINGS, middle)),
      [100, 200, 400, 10_000],
      reason,
    );
    assert.equal(requeueDelay(reason, 2, SETTINGS, lowest), 150, reason);
  }
});

Deno.test("a busy message waits requeueDelay clamped to 1-5s, jittered, whatever its attempts", () => {
  const busy = (requeueDelayMs: number, maxRequeueDelayMs = 900_000, random = middle) =>
    requeueDelay("busy", 7, { requeueDelayMs, maxRequeueDelayMs }, random);
  assert.equal(busy(100), 1_000);
  assert.equal(busy(3_000), 3_000);
  assert.equal(busy(60_000), 5_000);
  assert.equal(busy(100, 500), 500);
  assert.equal(busy(2_000, 900_000, lowest), 1_500);
  assert.equal(
    requeueDelay("busy", 1, SETTINGS, middle),
    requeueDelay("busy", 9, SETTINGS, middle),
  );
});

Deno.test("an interrupted message goes back at once; a fault waits requeueDelay, unjittered", () => {
  for (const attempts of [1, 5]) {
    assert.equal(requeueDelay("interrupted", attempts, SETTINGS, lowest), 0);
    assert.equal(requeueDelay("fault", attempts, SETTINGS, lowest), 100);
  }
});
