import assert from "node:assert/strict";
import { parseTraceParent } from "../../src/observe/trace_parent.ts";
import { traceParentOfBody } from "../../src/observe/trace_parent_of_body.ts";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID = "b7ad6b7169203331";
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;
const encoder = new TextEncoder();

Deno.test("traceParentOfBody finds the field of a JSON object, and tells absent from invalid", () => {
  const body = (text: string) => encoder.encode(text);
  assert.deepEqual(
    plain(traceParentOfBody(body(` {"a":1,"traceparent":"${VALID}"}`), "traceparent")),
    {
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
    },
  );
  assert.equal(traceParentOfBody(body(`{"tp":"${VALID}"}`), "tp") !== "absent", true);
  assert.equal(traceParentOfBody(body(`{"traceparent":"nope"}`), "traceparent"), "invalid");
  assert.equal(traceParentOfBody(body(`{"traceparent":7}`), "traceparent"), "invalid");
  assert.equal(traceParentOfBody(body(`{"a":1}`), "traceparent"), "absent");
  // Only a top-level field counts.
  assert.equal(
    traceParentOfBody(body(`{"a":{"traceparent":"${VALID}"}}`), "traceparent"),
    "absent",
  );
  assert.equal(traceParentOfBody(body(`["traceparent","${VALID}"]`), "traceparent"), "absent");
  assert.equal(traceParentOfBody(body(`{"traceparent":"${VALID}"`), "traceparent"), "absent");
  assert.equal(traceParentOfBody(body(`traceparent ${VALID}`), "traceparent"), "absent");
  assert.equal(traceParentOfBody(new Uint8Array([0xff, 0x7b]), "traceparent"), "absent");
  assert.equal(traceParentOfBody(new Uint8Array(), "traceparent"), "absent");
});

/** A found `traceparent` as a plain object (its ids may be read from the body when asked for). */
function plain(found: ReturnType<typeof traceParentOfBody>): unknown {
  if (typeof found === "string") return found;
  return { traceId: found.traceId, spanId: found.spanId, traceFlags: found.traceFlags };
}

/** What `traceParentOfBody` must find in a JSON body: the value of its parsed top-level field. */
function parsedField(text: string, field: string): unknown {
  const parsed = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "absent";
  if (!Object.hasOwn(parsed, field)) return "absent";
  return parseTraceParent(parsed[field]) ?? "invalid";
}

Deno.test("traceParentOfBody reads without parsing only where a parse would find the same", () => {
  const other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  const bodies: string[] = [
    `{"clicks":1,"event_id":"e1","traceparent":"${VALID}","pad":"xxxx"}`,
    `{"a":[1,{"b":2}],"traceparent":"${VALID}"}`,
    `{ "traceparent" : "${VALID}" }`,
    `{"traceparent":"${VALID}","traceparent":"${other}"}`, // the last one counts
    `{"traceparent":"${VALID}","x":{"traceparent":"${other}"}}`, // the nested one does not
    `{"x":{"traceparent":"${other}"}}`,
    `{"x":"{\\"traceparent\\":\\"${other}\\"}","traceparent":"${VALID}"}`,
    `{"x":"\\"traceparent\\":\\"${other}\\"","y":1}`,
    `{"q":"\\"","\\"traceparent":"${VALID}"}`, // a key that only ends like the field
    `{"x":"}{","traceparent":"${VALID}"}`,
    // Escaped quotes before (read from the start) and after (read to the end) a nested field.
    `{"a":{"b":"\\"}\\"","traceparent":"${VALID}"},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
    `{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","a":{"traceparent":"${VALID}","b":"\\"x"},"c":"\\"y"}`,
    `{"x":"]","traceparent":"${VALID}"}`,
    `{"traceparent":"\\u0030${VALID.slice(1)}"}`, // escaped, still valid
    `{"traceparent":"${VALID}\\n"}`,
    `{"traceparent":"${VALID.toUpperCase()}"}`,
    `{"traceparent":["${VALID}"]}`,
    `{"traceparent":null,"n":1}`,
    `{"é":"ü","traceparent":"${VALID}"}`,
    `{"a":"traceparent","b":"${VALID}"}`,
    `[{"traceparent":"${VALID}"}]`,
    `"traceparent"`,
  ];
  // The values parseTraceParent takes and refuses, read from bodies.
  const values = [
    VALID,
    `00-${TRACE_ID}-${SPAN_ID}-00`,
    `01-${TRACE_ID}-${SPAN_ID}-01-extra`,
    `cc-${TRACE_ID}-${SPAN_ID}-09`,
    `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
    `01-${TRACE_ID}-${SPAN_ID}-01extra`,
    `ff-${TRACE_ID}-${SPAN_ID}-01`,
    `0g-${TRACE_ID}-${SPAN_ID}-01`,
    `10-${TRACE_ID}-${SPAN_ID}-0x`,
    `00-${"0".repeat(32)}-${SPAN_ID}-01`,
    `00-${TRACE_ID}-${"0".repeat(16)}-01`,
    `00-${TRACE_ID.slice(1)}A-${SPAN_ID}-01`,
    `00-${TRACE_ID}_${SPAN_ID}-01`,
    `00-${TRACE_ID}-${SPAN_ID}-01 `,
    VALID.slice(0, 54),
    "",
  ];
  for (const value of values) {
    bodies.push(`{"n":1,"traceparent":"${value}","pad":"x"}`, `{"n":1,"traceparent":"${value}"}`);
  }
  for (const text of bodies) {
    assert.deepEqual(
      plain(traceParentOfBody(encoder.encode(text), "traceparent")),
      parsedField(text, "traceparent"),
      text,
    );
  }
  // Another field name, quoted as JSON quotes it.
  const odd = `{"trace\\"id":"${VALID}"}`;
  assert.deepEqual(
    plain(traceParentOfBody(encoder.encode(odd), 'trace"id')),
    parsedField(odd, 'trace"id'),
  );
});

Deno.test("traceParentOfBody agrees with a parse on generated bodies full of quotes, escapes and brackets", () => {
  let seed = 0x2545f491;
  const next = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  const text = () =>
    Array.from({ length: next(6) }, () => '"\\{}[],: xtraceparent'[next(21)]).join("");
  const value = (depth: number): unknown => {
    const kind = next(depth > 2 ? 3 : 6);
    if (kind === 0) return text();
    if (kind === 1) return next(100);
    if (kind === 2) return [VALID, other, "nope"][next(3)];
    if (kind === 3) return Array.from({ length: next(3) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const object = (depth: number): Record<string, unknown> => {
    const entries: [string, unknown][] = [];
    for (let i = next(5); i > 0; i--) {
      entries.push([next(3) === 0 ? "traceparent" : text(), value(depth)]);
    }
    return Object.fromEntries(entries);
  };
  for (let i = 0; i < 3_000; i++) {
    // JSON.stringify writes each key once; a second top-level one is spliced in by hand.
    let body = JSON.stringify(object(0), null, next(2) === 0 ? undefined : 1);
    if (next(4) === 0 && body.length > 2) {
      body = `{"traceparent":"${[VALID, other][next(2)]}",${body.slice(1)}`;
    }
    assert.deepEqual(
      plain(traceParentOfBody(encoder.encode(body), "traceparent")),
      parsedField(body, "traceparent"),
      body,
    );
  }
});
