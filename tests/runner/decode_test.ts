import assert from "node:assert/strict";
import { decodeBody, DecodeError } from "../../src/runner/decode.ts";

const encoder = new TextEncoder();
const invalidUtf8 = new Uint8Array([0x7b, 0xff, 0x7d]);

Deno.test("json is the default", () => {
  assert.deepEqual(decodeBody(undefined, encoder.encode('{"clicks":3}')), { clicks: 3 });
  assert.deepEqual(decodeBody("json", encoder.encode(" [1, 2] ")), [1, 2]);
  assert.equal(decodeBody("json", encoder.encode("null")), null);
  assert.deepEqual(decodeBody("json", encoder.encode('\uFEFF{"a":"é"}')), { a: "é" });
});

Deno.test("json: an empty body, invalid UTF-8 and invalid JSON say what is wrong", () => {
  assert.throws(
    () => decodeBody("json", new Uint8Array()),
    new DecodeError("body is empty (expected JSON)"),
  );
  assert.throws(() => decodeBody("json", invalidUtf8), new DecodeError("body is not valid UTF-8"));
  assert.throws(
    () => decodeBody(undefined, encoder.encode("xyz")),
    new DecodeError(`body is not JSON: Unexpected token 'x', "xyz" is not valid JSON`),
  );
  assert.throws(
    () => decodeBody("json", encoder.encode('{"a":')),
    (error) => {
      assert.ok(error instanceof DecodeError);
      assert.equal(error.name, "DecodeError");
      assert.match(error.message, /^body is not JSON: /);
      assert.ok(error.cause instanceof SyntaxError);
      return true;
    },
  );
});

Deno.test("text is strict UTF-8", () => {
  assert.equal(decodeBody("text", encoder.encode("héllo")), "héllo");
  assert.equal(decodeBody("text", new Uint8Array()), "");
  assert.throws(() => decodeBody("text", invalidUtf8), new DecodeError("body is not valid UTF-8"));
});

Deno.test("bytes are handed over as they are", () => {
  assert.equal(decodeBody("bytes", invalidUtf8), invalidUtf8);
});

Deno.test("a function decodes; what it throws becomes a DecodeError", () => {
  assert.equal(decodeBody((bytes) => bytes.length, invalidUtf8), 3);
  const cause = new RangeError("bad varint");
  assert.throws(
    () =>
      decodeBody(() => {
        throw cause;
      }, invalidUtf8),
    (error) => {
      assert.ok(error instanceof DecodeError);
      assert.equal(error.message, "decode function threw: RangeError: bad varint");
      assert.equal(error.cause, cause);
      return true;
    },
  );
  assert.throws(
    () =>
      decodeBody(() => {
        throw "nope";
      }, invalidUtf8),
    new DecodeError("decode function threw: nope"),
  );
});

Deno.test("an unknown decode is a DecodeError, not a crash", () => {
  assert.throws(
    () => decodeBody("yaml" as "json", encoder.encode("{}")),
    new DecodeError(`decode must be "json", "text", "bytes" or a function, got yaml`),
  );
});
