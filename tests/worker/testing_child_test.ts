/**
 * The test kit running a worker in a child process (`runWorker(…, { child })`),
 * the way an entry with `processes: 1` runs it.
 */
import assert from "node:assert/strict";
import { runWorker } from "@nsqworker/nsqworker/testing";
import pageview from "../../workers/demo/pageview.ts";
import childFaults from "../fixtures/workers/child_faults.ts";

const PAGEVIEW = new URL("../../workers/demo/pageview.ts", import.meta.url);
const CHILD_FAULTS = new URL("../fixtures/workers/child_faults.ts", import.meta.url);

Deno.test("in a child: the same outcome, publishes and logs as in the thread, setup and teardown around it", async () => {
  const options = { options: { counted_topic: "pageviews.counted" } };
  const inThread = await runWorker(pageview, { event_id: "e1", clicks: 2 }, options);
  const inChild = await runWorker(pageview, { event_id: "e1", clicks: 2 }, {
    ...options,
    child: PAGEVIEW,
  });
  assert.deepEqual(inChild.outcome, inThread.outcome);
  assert.deepEqual(inChild.published, inThread.published);
  assert.deepEqual(inChild.logs.map((log) => log.msg), [
    "counting page views",
    "pageview",
    "stopped counting page views",
  ]);
  const handled = inChild.logs[1]!;
  assert.deepEqual(
    { clicks: handled.properties.clicks, attempts: handled.properties.attempts },
    { clicks: 2, attempts: 1 },
  );
  assert.deepEqual(
    (await runWorker(pageview, { clicks: -1 }, { child: PAGEVIEW })).outcome,
    { kind: "dead", reason: "permanent", error: "negative clicks" },
  );
});

Deno.test("in a child: a handler whose process exits is requeued at once", async () => {
  const { outcome } = await runWorker(childFaults, "exit", { child: CHILD_FAULTS });
  assert.equal(outcome.kind, "retry");
  assert.equal(outcome.delayMs, 0);
  assert.match(outcome.error!, /^HandlerLost: the child process \d+ ended \(exit, exit code 1\)/);
});

Deno.test("in a child: a runaway handler is killed kill_grace after its timeout", async () => {
  const started = performance.now();
  const { outcome } = await runWorker(childFaults, "spin", {
    child: CHILD_FAULTS,
    timeoutMs: 300,
    killGraceMs: 100,
  });
  assert.deepEqual(outcome, {
    kind: "retry",
    error: "handler timed out after 300ms",
    delayMs: outcome.delayMs,
  });
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("options.child must be the module of the worker given", async () => {
  await assert.rejects(
    runWorker(pageview, { clicks: 1 }, { child: CHILD_FAULTS }),
    TypeError,
    "options.child must be the module whose default export is the worker given",
  );
});
