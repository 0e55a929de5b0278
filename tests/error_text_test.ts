import assert from "node:assert/strict";
import { errorText } from "../src/error_text.ts";

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
