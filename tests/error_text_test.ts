import assert from "node:assert/strict";
import { describeError, errorText, MAX_ERROR_LENGTH } from "../src/error_text.ts";

Deno.test("errorText: an Error's message without its name, anything else as String()", () => {
  assert.equal(errorText(new TypeError("boom")), "boom");
  assert.equal(errorText(new Error("")), "");
  assert.equal(errorText("refused"), "refused");
  assert.equal(errorText(42), "42");
  assert.equal(errorText(undefined), "undefined");
  assert.equal(errorText({ code: 1 }), "[object Object]");
});

Deno.test("errorText never throws, even for values that refuse to become text", () => {
  const throwing = {
    toString(): string {
      throw new Error("no text");
    },
  };
  assert.equal(errorText(Object.create(null)), "(an error that cannot be turned into text)");
  assert.equal(errorText(throwing), "(an error that cannot be turned into text)");
});

Deno.test("describeError: an Error's name unless plain, an object's JSON, cut at MAX_ERROR_LENGTH", () => {
  assert.equal(describeError(new Error("boom")), "boom");
  assert.equal(describeError(new Error("")), "Error");
  assert.equal(describeError(new TypeError("x is undefined")), "TypeError: x is undefined");
  assert.equal(describeError({ code: 42 }), '{"code":42}');
  assert.equal(describeError(Object.create(null)), "{}");
  assert.equal(describeError(42), "42");
  const long = describeError(new Error("x".repeat(5_000)));
  assert.equal(long.length, MAX_ERROR_LENGTH);
  assert.ok(long.endsWith("…"));
  const throwing = {
    toJSON(): never {
      throw new Error("no JSON");
    },
    toString(): string {
      throw new Error("no text");
    },
  };
  assert.equal(describeError(throwing), "(an error that cannot be turned into text)");
});
