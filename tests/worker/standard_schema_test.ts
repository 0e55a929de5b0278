/**
 * Body schemas from Standard Schema: issues listed at their paths, async
 * schemas, and the dead letter envelope the daemon publishes for a body that
 * fails its schema (against real nsqd).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { MAX_ERROR_LENGTH } from "../../src/error_text.ts";
import {
  checkWithSchema,
  describeIssues,
  MAX_LISTED_ISSUES,
  type StandardSchemaResult,
  type StandardSchemaV1,
} from "../../src/worker/standard_schema.ts";
import { runWorker } from "../../src/testing.ts";
import { defineWorker } from "../../src/mod.ts";
import { envelope, oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";

/** A hand-made Standard Schema: no library behind it, as the daemon sees any schema. */
function schemaOf<T>(
  validate: (value: unknown) => StandardSchemaResult<T> | Promise<StandardSchemaResult<T>>,
): StandardSchemaV1<unknown, T> {
  return { "~standard": { version: 1, vendor: "test", validate } };
}

Deno.test("each issue is listed at its path: keys dotted, indexes and odd keys bracketed", () => {
  assert.equal(
    describeIssues([
      { message: "expected number, got string", path: ["clicks"] },
      { message: "expected string", path: ["tags", 1] },
      { message: "required", path: [{ key: "user" }, { key: "first name" }] },
      { message: "not an object" },
    ]),
    'clicks: expected number, got string; tags[1]: expected string; user["first name"]: ' +
      "required; not an object",
  );
});

Deno.test("issues beyond the first ten are counted, and a long message does not hide the others", () => {
  const many = Array.from({ length: 25 }, (_, i) => ({ message: "bad", path: [`f${i}`] }));
  const text = describeIssues(many);
  assert.equal(text.split("; ").length, MAX_LISTED_ISSUES + 1);
  assert.ok(text.endsWith("; and 15 more issues"), text);
  const long = describeIssues([
    { message: "x".repeat(5000), path: ["a"] },
    { message: "expected number", path: ["b"] },
  ]);
  assert.ok(long.length <= MAX_ERROR_LENGTH, `${long.length}`);
  assert.ok(long.endsWith("; b: expected number"), long);
});

Deno.test("a schema that throws, or returns no result, fails the body with what it did", async () => {
  const throws = schemaOf(() => {
    throw new TypeError("broken");
  });
  assert.deepEqual(checkWithSchema(throws, 1), {
    ok: false,
    error: "schema threw: TypeError: broken",
  });
  const rejects = schemaOf(() => Promise.reject(new Error("gone")));
  assert.deepEqual(await checkWithSchema(rejects, 1), { ok: false, error: "schema threw: gone" });
  const nothing = schemaOf(() => undefined as unknown as StandardSchemaResult<unknown>);
  assert.deepEqual(checkWithSchema(nothing, 1), {
    ok: false,
    error: "schema returned undefined, not a result",
  });
});

Deno.test("a synchronous schema is checked in the same turn; an async one is awaited", async () => {
  const sync = schemaOf((value) => ({ value }));
  assert.deepEqual(checkWithSchema(sync, 3), { ok: true, value: 3 });
  const later = schemaOf((value) =>
    Promise.resolve(
      typeof value === "number"
        ? { value: value * 2 }
        : { issues: [{ message: "expected number" }] },
    )
  );
  const pending = checkWithSchema(later, 3);
  assert.ok(pending instanceof Promise);
  assert.deepEqual(await pending, { ok: true, value: 6 });
});

Deno.test("the handler gets the schema's output; an async schema's issues dead-letter the body", async () => {
  const seen: unknown[] = [];
  const worker = defineWorker({
    schema: z.object({ clicks: z.coerce.number() }).refine(
      async (body) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return body.clicks < 100;
      },
      { message: "too many clicks", path: ["clicks"] },
    ),
    handle(body) {
      seen.push(body.clicks);
    },
  });
  assert.deepEqual((await runWorker(worker, { clicks: "7", extra: 1 })).outcome, {
    kind: "finish",
  });
  assert.deepEqual(seen, [7], "coerced and stripped by the schema");
  assert.deepEqual((await runWorker(worker, { clicks: 700 })).outcome, {
    kind: "dead",
    reason: "validate",
    error: "clicks: too many clicks",
  });
  assert.deepEqual(seen, [7]);
});

Deno.test("a body that fails its schema is dead-lettered with each issue in the envelope", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("schema");
  await nsq.createChannel(`${topic}.dead`, "check");
  let handled = 0;
  await using _daemon = await startInProcess({
    yaml: oneEntryYaml(nsq.nsqds[0]!.tcpAddress, topic),
    workers: {
      "test/worker": defineWorker({
        schema: z.object({ clicks: z.number(), tags: z.array(z.string()) }),
        handle() {
          handled++;
        },
      }),
    },
  });
  const body = JSON.stringify({ clicks: "3", tags: ["a", 2] });
  await nsq.publish(topic, body);
  const [letter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
  const dead = envelope(letter!);
  assert.equal(dead.reason, "validate");
  assert.equal(
    dead.error,
    "clicks: Invalid input: expected number, received string; " +
      "tags[1]: Invalid input: expected string, received number",
  );
  assert.equal(dead.body, body);
  assert.equal(handled, 0);
});
