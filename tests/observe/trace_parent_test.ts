import assert from "node:assert/strict";
import {
  formatTraceParent,
  parseTraceParent,
  withTraceParent,
  withTraceParents,
} from "../../src/observe/trace_parent.ts";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

Deno.test("parseTraceParent reads a version-00 traceparent and its flags", () => {
  assert.deepEqual(parseTraceParent(VALID), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 });
  assert.equal(parseTraceParent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.traceFlags, 0);
});

Deno.test("parseTraceParent takes a later version with more fields, as the W3C spec asks", () => {
  assert.equal(parseTraceParent(`01-${TRACE_ID}-${SPAN_ID}-01-extra`)?.spanId, SPAN_ID);
});

Deno.test("parseTraceParent refuses what the W3C spec calls invalid", () => {
  for (
    const value of [
      "",
      "garbage",
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${"0".repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${"0".repeat(16)}-01`,
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`,
      ` ${VALID}`,
      42,
      null,
      { traceparent: VALID },
    ]
  ) {
    assert.equal(parseTraceParent(value), null, JSON.stringify(value));
  }
});

Deno.test("formatTraceParent writes version 00 with two hex digits of flags", () => {
  assert.equal(formatTraceParent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }), VALID);
  assert.equal(
    formatTraceParent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 }),
    `00-${TRACE_ID}-${SPAN_ID}-00`,
  );
});

Deno.test("withTraceParent adds the field to a copy of a plain object only, never overwriting", () => {
  const body = { a: 1 };
  const traced = withTraceParent(body, "traceparent", VALID);
  assert.deepEqual(traced, { a: 1, traceparent: VALID });
  assert.deepEqual(body, { a: 1 }, "the worker's object is left as it was");

  const own = { traceparent: "mine" };
  assert.equal(withTraceParent(own, "traceparent", VALID), own);
  const bare = Object.assign(Object.create(null), { a: 1 });
  assert.deepEqual({ ...withTraceParent(bare, "tp", VALID) as object }, { a: 1, tp: VALID });

  for (const other of ["text", 7, null, [1, 2], new Uint8Array([1]), new Date(0)]) {
    assert.equal(withTraceParent(other, "traceparent", VALID), other);
  }
});

Deno.test("withTraceParents writes into each body, and into none without a field or a traceparent", () => {
  const bodies = [{ a: 1 }, "text", { traceparent: "mine" }];
  assert.deepEqual(withTraceParents(bodies, "tp", VALID), [
    { a: 1, tp: VALID },
    "text",
    { traceparent: "mine", tp: VALID },
  ]);
  assert.equal(withTraceParents(bodies, null, VALID), bodies);
  assert.equal(withTraceParents(bodies, "tp", null), bodies);
  assert.deepEqual(bodies[0], { a: 1 }, "the worker's objects are left as they were");
});
