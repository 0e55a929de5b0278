import assert from "node:assert/strict";
import { retryDelay } from "../../src/backoff.ts";

const middle = () => 0.5; // jitter factor 1
const lowest = () => 0; // jitter factor 0.75
const highest = () => 0.999; // jitter factor 1.2495

Deno.test("doubles from requeueDelay with each attempt", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((attempts) => retryDelay(attempts, 5_000, 900_000, middle)),
    [5_000, 10_000, 20_000, 40_000, 80_000],
  );
});

Deno.test("jitter stays within [0.75, 1.25) of the delay", () => {
  assert.equal(retryDelay(1, 1_000, 900_000, lowest), 750);
  assert.equal(retryDelay(1, 1_000, 900_000, highest), 1_249);
  for (let i = 0; i < 1_000; i++) {
    const delay = retryDelay(3, 1_000, 900_000);
    assert.ok(delay >= 3_000 && delay < 5_000, `${delay}`);
  }
});

Deno.test("capped by maxRequeueDelay, jitter included", () => {
  assert.equal(retryDelay(9, 5_000, 900_000, middle), 900_000);
  assert.equal(retryDelay(8, 5_000, 900_000, highest), 799_680);
  assert.equal(retryDelay(9, 5_000, 900_000, lowest), 900_000);
});

Deno.test("always a whole number of milliseconds", () => {
  for (let i = 0; i < 1_000; i++) {
    const delay = retryDelay(1 + (i % 10), 333.3, 100_000.5);
    assert.ok(Number.isInteger(delay) && delay >= 0, `${delay}`);
  }
  assert.equal(retryDelay(1, 1_000, 1_500.9, highest), 1_249);
  assert.equal(retryDelay(5, 1_000, 1_500.9, highest), 1_500);
});

Deno.test("large attempts do not overflow", () => {
  for (const attempts of [53, 64, 1_024, 1_025, 1e9, Number.MAX_SAFE_INTEGER, Infinity]) {
    assert.equal(retryDelay(attempts, 5_000, 3_600_000, middle), 3_600_000, `${attempts}`);
  }
  assert.equal(retryDelay(1e9, 0, 3_600_000, middle), 0, "0 × 2^n stays 0, not NaN");
});

Deno.test("odd inputs still give a usable delay", () => {
  assert.equal(retryDelay(0, 5_000, 900_000, middle), 5_000, "attempt 0 counts as the first");
  assert.equal(retryDelay(-3, 5_000, 900_000, middle), 5_000);
  assert.equal(retryDelay(Number.NaN, 5_000, 900_000, middle), 5_000);
  assert.equal(retryDelay(1, Number.NaN, 900_000, middle), 0);
  assert.equal(retryDelay(1, -5, 900_000, middle), 0);
  assert.equal(retryDelay(1, 5_000, Infinity, middle), 5_000);
  assert.equal(retryDelay(2_000, 5_000, Infinity, middle), 0, "no cap and no end: 0, not Infinity");
  assert.equal(retryDelay(1, 1_000, 900_000, () => 7), 1_250, "random() above 1 counts as 1");
  assert.equal(retryDelay(1, 1_000, 900_000, () => Number.NaN), 750);
});
