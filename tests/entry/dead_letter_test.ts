import assert from "node:assert/strict";
import { type DeadLetterEnvelope, deadLetterEnvelope } from "../../src/entry/dead_letter.ts";

const encoder = new TextEncoder();

function encode(body: Uint8Array, extra: { now?: number; maxBytes?: number }): Uint8Array {
  return deadLetterEnvelope({
    topic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
    message: { id: "0a1b2c3d4e5f6789", attempts: 5, timestamp: 1_700_000_000_123, body },
    reason: "max_attempts",
    error: 'upstream said "no"',
    ...extra,
  });
}

function envelope(body: Uint8Array, now?: number): DeadLetterEnvelope {
  const bytes = encode(body, now === undefined ? {} : { now });
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

function cutEnvelope(body: Uint8Array, maxBytes: number): [DeadLetterEnvelope, number] {
  const bytes = encode(body, { maxBytes });
  return [JSON.parse(new TextDecoder().decode(bytes)), bytes.length];
}

function startsWith(whole: Uint8Array, head: Uint8Array): boolean {
  return head.length <= whole.length && head.every((byte, i) => whole[i] === byte);
}

Deno.test("a UTF-8 body too large for nsqd is cut as UTF-8 text, within the limit", () => {
  const body = encoder.encode("plain ascii, not json ".repeat(60_000)); // ~1.3 MiB
  const [result, size] = cutEnvelope(body, 1024 * 1024);
  assert.equal(result.body_encoding, "utf8");
  assert.equal(result.body_truncated, true);
  assert.equal(result.body_bytes, body.length);
  assert.ok(size <= 1024 * 1024, `${size} bytes`);
  assert.ok(size > 1024 * 1024 - 16, `the room is used: ${size} bytes`);
  assert.ok(startsWith(body, encoder.encode(result.body)));
});

Deno.test("a truncated UTF-8 body never ends in half a character, whatever the escaping", () => {
  for (const text of ["é", "😀", "\u0000", '"', "a😀é\n"]) {
    const body = encoder.encode(text.repeat(400));
    for (let maxBytes = 400; maxBytes < 440; maxBytes++) {
      const [result, size] = cutEnvelope(body, maxBytes);
      assert.equal(result.body_encoding, "utf8");
      assert.ok(size <= maxBytes, `${JSON.stringify(text)}: ${size} > ${maxBytes}`);
      const head = encoder.encode(result.body);
      assert.ok(startsWith(body, head), `${JSON.stringify(text)} cut at ${maxBytes}: not a prefix`);
      assert.ok(result.body.isWellFormed(), "no lone surrogate");
    }
  }
});

Deno.test("a binary body too large is cut in base64", () => {
  const body = new Uint8Array(2000).fill(0xff);
  const [result, size] = cutEnvelope(body, 1000);
  assert.equal(result.body_encoding, "base64");
  assert.equal(result.body_truncated, true);
  assert.ok(size <= 1000);
  assert.ok(startsWith(body, Uint8Array.fromBase64(result.body)));
});
