import assert from "node:assert/strict";
import { deliveryTraceIds } from "../../src/observe/trace_ids.ts";
import { traceIdRatioSampled } from "../../src/observe/trace_sampler.ts";

const SCOPE = "pageviews/counter@127.0.0.1:4150";

Deno.test("deliveryTraceIds gives a delivery the same valid ids at every look", () => {
  const ids = deliveryTraceIds(SCOPE, "0a1b2c3d4e5f6789");
  assert.match(ids.traceId, /^[0-9a-f]{32}$/);
  assert.match(ids.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(ids.traceId, "0".repeat(32));
  assert.deepEqual(deliveryTraceIds(SCOPE, "0a1b2c3d4e5f6789"), ids);
});

Deno.test("deliveryTraceIds spreads deliveries like random ids: distinct, and sampled at the ratio", () => {
  const traceIds = new Set<string>();
  const spanIds = new Set<string>();
  let sampled = 0;
  const count = 20_000;
  for (let i = 0; i < count; i++) {
    // nsqd's ids: a time, a node and a sequence, so consecutive ones differ in few digits.
    const id = (0x0a1b2c3d4e5f0000n + BigInt(i)).toString(16).padStart(16, "0");
    const scope = i % 2 === 0 ? SCOPE : "pageviews/counter@127.0.0.1:4151";
    const ids = deliveryTraceIds(scope, id);
    traceIds.add(ids.traceId);
    spanIds.add(ids.spanId);
    if (traceIdRatioSampled(ids.traceId, 0.1)) sampled++;
  }
  assert.equal(traceIds.size, count);
  assert.equal(spanIds.size, count);
  // 2,000 expected; 4.5 standard deviations either side.
  assert.ok(sampled > 1_800 && sampled < 2_200, `${sampled} of ${count} sampled at 0.1`);
  // The same message id from another nsqd is another delivery.
  assert.notEqual(
    deliveryTraceIds(SCOPE, "0a1b2c3d4e5f6789").traceId,
    deliveryTraceIds("pageviews/counter@127.0.0.1:4151", "0a1b2c3d4e5f6789").traceId,
  );
});
