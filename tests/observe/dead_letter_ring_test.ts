import assert from "node:assert/strict";
import {
  bodyPreview,
  DeadLetterRing,
  MAX_ERROR_CHARS,
} from "../../src/observe/dead_letter_ring.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

Deno.test("bodyPreview: UTF-8 without control characters is text, cut on a whole character", () => {
  assert.deepEqual(bodyPreview(utf8('{"id":1}\n')), {
    encoding: "text",
    text: '{"id":1}\n',
    cut: false,
  });
  // "é" is two bytes: a cut after its first byte leaves it out.
  assert.deepEqual(bodyPreview(utf8("aé"), 2), { encoding: "text", text: "a", cut: true });
  assert.deepEqual(bodyPreview(utf8("<img src=x onerror=alert(1)>"), 10), {
    encoding: "text",
    text: "<img src=x",
    cut: true,
  });
  assert.deepEqual(bodyPreview(new Uint8Array()), { encoding: "text", text: "", cut: false });
});

Deno.test("bodyPreview: bytes that are not UTF-8, or control characters, are hex", () => {
  assert.deepEqual(bodyPreview(new Uint8Array([0xde, 0xad, 0xbe, 0xef])), {
    encoding: "hex",
    text: "de ad be ef",
    cut: false,
  });
  assert.deepEqual(bodyPreview(utf8("a\u0000b")), {
    encoding: "hex",
    text: "61 00 62",
    cut: false,
  });
  assert.deepEqual(bodyPreview(new Uint8Array(100).fill(0xff), 8), {
    encoding: "hex",
    text: "ff ff ff ff",
    cut: true,
  });
});

Deno.test("DeadLetterRing keeps the newest, counts them all, cuts long errors", () => {
  let now = 0;
  const ring = new DeadLetterRing(3, () => ++now);
  assert.deepEqual(ring.records(), []);
  for (const id of ["a", "b", "c", "d", "e"]) {
    ring.record({ id, attempts: 2, body: utf8(id) }, "max_attempts", `failed ${id}`);
  }
  assert.equal(ring.written, 5);
  assert.deepEqual(ring.records().map((r) => [r.messageId, r.at]), [["e", 5], ["d", 4], ["c", 3]]);
  assert.deepEqual(ring.records()[0], {
    at: 5,
    messageId: "e",
    attempts: 2,
    reason: "max_attempts",
    error: "failed e",
    bodyBytes: 1,
    preview: { encoding: "text", text: "e", cut: false },
  });
  ring.record({ id: "f", attempts: 1, body: utf8("x") }, "permanent", "y".repeat(1000));
  const error = ring.records()[0]!.error;
  assert.equal(error.length, MAX_ERROR_CHARS);
  assert.ok(error.endsWith("..."));
});
