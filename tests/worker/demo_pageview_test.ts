/** The demo worker, tested with the kit worker authors use (`src/testing.ts`). */
import assert from "node:assert/strict";
import { dedupeStore, runWorker } from "@nsqworker/nsqworker/testing";
import pageview from "../../workers/demo/pageview.ts";

Deno.test("a page view is counted, logged and published to counted_topic", async () => {
  const { outcome, published, logs } = await runWorker(pageview, { event_id: "e1", clicks: 2 }, {
    options: { counted_topic: "pageviews.counted" },
  });
  assert.deepEqual(outcome, { kind: "finish" });
  assert.deepEqual(published, [{ topic: "pageviews.counted", body: { id: "e1" } }]);
  assert.deepEqual(logs.map(({ level, msg }) => ({ level, msg })), [
    { level: "info", msg: "pageview" },
  ]);
  assert.equal(logs[0]!.properties.clicks, 2);
  assert.equal(logs[0]!.properties.label, "demo");
});

Deno.test("the same event published twice is counted once", async () => {
  const store = dedupeStore();
  const event = { event_id: "e2", clicks: 1 };
  assert.equal((await runWorker(pageview, event, { store })).outcome.kind, "finish");
  const again = await runWorker(pageview, event, { store });
  assert.deepEqual(again.outcome, { kind: "duplicate" });
  assert.deepEqual(again.logs, []);
});

Deno.test("a body the schema refuses is dead-lettered with the issue at its path", async () => {
  const { outcome } = await runWorker(pageview, { clicks: "3" });
  assert.deepEqual(outcome, {
    kind: "dead",
    reason: "validate",
    error: "clicks: Invalid input: expected number, received string",
  });
});

Deno.test("negative clicks are dead-lettered at once, without a retry", async () => {
  const { outcome } = await runWorker(pageview, { clicks: -1 });
  assert.deepEqual(outcome, { kind: "dead", reason: "permanent", error: "negative clicks" });
});
