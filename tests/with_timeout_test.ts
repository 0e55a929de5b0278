import assert from "node:assert/strict";
import { TIMED_OUT, withTimeout } from "../src/with_timeout.ts";

Deno.test("withTimeout settles as the promise does when it is in time, and clears its timer", async () => {
  // A 60s timer left behind fails this test through the op sanitizer.
  assert.equal(await withTimeout(Promise.resolve(7), 60_000), 7);
  await assert.rejects(withTimeout(Promise.reject(new Error("refused")), 60_000), /refused/);
});

Deno.test("withTimeout gives TIMED_OUT when the time runs out, and a late rejection stays handled", async () => {
  let reject!: (error: Error) => void;
  const late = new Promise<number>((_, no) => reject = no);
  const started = performance.now();
  assert.equal(await withTimeout(late, 20), TIMED_OUT);
  assert.ok(performance.now() - started >= 15);
  // Unhandled, this would fail the test run.
  reject(new Error("too late"));
  await Promise.resolve();
});
