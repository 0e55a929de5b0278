import assert from "node:assert/strict";
import { type DeadLetterEnvelope, deadLetterEnvelope } from "../src/dead_letter.ts";

const encoder = new TextEncoder();

function envelope(body: Uint8Array, now?: number): DeadLetterEnvelope {
  const bytes = deadLetterEnvelope({
    topic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
    message: { id: "0a1b2c3d4e5f6789", attempts: 5, timestamp: 1_700_000_000_123, body },
    reason: "max_attempts",
    error: 'upstream said "no"',
    ...(now === undefined ? {} : { now }),
  });
  assert.ok(bytes instanceof Uint8Array);
  return JSON.parse(new TextDecoder().decode(bytes));
}

Deno.test("a UTF-8 body is kept as a string, with every field in order", () => {
  const result = envelope(encoder.encode('{"clicks":3,"name":"Zoë"}'), Date.UTC(2025, 0, 31, 12));
  assert.deepEqual(Object.keys(result), [
    "topic",
    "channel",
    "worker",
    "message_id",
    "attempts",
    "timestamp",
    "dead_at",
    "reason",
    "error",
    "body",
    "body_encoding",
  ]);
  assert.deepEqual(result, {
    topic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
    message_id: "0a1b2c3d4e5f6789",
    attempts: 5,
    timestamp: 1_700_000_000_123,
    dead_at: "2025-01-31T12:00:00.000Z",
    reason: "max_attempts",
    error: 'upstream said "no"',
    body: '{"clicks":3,"name":"Zoë"}',
    body_encoding: "utf8",
  });
});

Deno.test("a body that is not UTF-8 goes as base64 and comes back byte for byte", () => {
  const body = new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x41]);
  const result = envelope(body);
  assert.equal(result.body_encoding, "base64");
  assert.equal(result.body, "/wDDKEE=");
  assert.deepEqual(Uint8Array.fromBase64(result.body), body);
});

Deno.test("a leading BOM and control characters survive as UTF-8", () => {
  const body = encoder.encode("\uFEFFline 1\nline\t2\u0000");
  const result = envelope(body);
  assert.equal(result.body_encoding, "utf8");
  assert.deepEqual(encoder.encode(result.body), body);
});

Deno.test("an empty body is an empty UTF-8 string; dead_at defaults to now", () => {
  const before = Date.now();
  const result = envelope(new Uint8Array());
  assert.equal(result.body, "");
  assert.equal(result.body_encoding, "utf8");
  const deadAt = Date.parse(result.dead_at);
  assert.ok(deadAt >= before && deadAt <= Date.now());
});

Deno.test("a body that is a view into a larger buffer encodes only the view", () => {
  const buffer = encoder.encode("xxhelloxx");
  assert.equal(envelope(buffer.subarray(2, 7)).body, "hello");
  const binary = new Uint8Array([1, 0xff, 0xfe, 2]).subarray(1, 3);
  assert.equal(envelope(binary).body, "//4=");
});
