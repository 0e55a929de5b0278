/**
 * A consumer's intake limit cuts the RDY it plans to its admission and its
 * rate bucket's tokens, and plans again once tokens have refilled.
 */

import assert from "node:assert/strict";
import { IntakeLimit } from "../../src/nsq/intake_limit.ts";
import type { RateBucket } from "../../src/nsq/rate_bucket.ts";

Deno.test("an admission allows that many beyond those in flight; 0 allows none; null lifts it", () => {
  const intake = new IntakeLimit(null, () => assert.fail("no bucket, no refill"));
  assert.equal(intake.limiting, false);
  assert.equal(intake.cap(100, 3, 100), 100);
  intake.admit(1);
  assert.equal(intake.limiting, true);
  assert.equal(intake.cap(100, 3, 100), 4);
  assert.equal(intake.cap(0, 3, 100), 0, "a paused consumer stays at 0");
  intake.admit(0);
  assert.equal(intake.cap(100, 3, 100), 0);
  intake.admit(null);
  assert.equal(intake.limiting, false);
  assert.equal(intake.cap(100, 3, 100), 100);
});

Deno.test("a rate bucket cuts to its tokens and, short of them, plans again after the refill", async () => {
  let tokens = 2;
  const bucket: RateBucket = {
    capacity: 10,
    available: () => tokens,
    take: () => tokens--,
    msUntilNext: () => 5,
  };
  const refilled = Promise.withResolvers<void>();
  const intake = new IntakeLimit(bucket, () => refilled.resolve());
  assert.equal(intake.limiting, true);
  assert.equal(intake.cap(100, 3, 100), 5, "three in flight and two tokens");
  intake.take();
  assert.equal(tokens, 1);
  tokens = 10;
  await refilled.promise;
  assert.equal(intake.cap(100, 3, 100), 13);
  intake.stop();
});

Deno.test("a stopped intake limit waits for no refill", () => {
  const intake = new IntakeLimit(
    { capacity: 10, available: () => 0, take() {}, msUntilNext: () => 5 },
    () => assert.fail("refilled after stop"),
  );
  intake.stop();
  assert.equal(intake.cap(100, 3, 100), 3);
});
