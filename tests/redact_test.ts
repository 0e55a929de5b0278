import assert from "node:assert/strict";
import { redact } from "../src/redact.ts";

Deno.test("redact hides the password of every URL and keeps the rest", () => {
  assert.equal(redact("redis://app:s3cret@cache:6379/0"), "redis://app:***@cache:6379/0");
  assert.equal(redact("rediss://:s3cret@cache"), "rediss://:***@cache");
  assert.equal(
    redact("from redis://a:one@h1/0 to REDIS://b:two@h2/1"),
    "from redis://a:***@h1/0 to REDIS://b:***@h2/1",
  );
  assert.equal(redact("amqp://u:p@broker"), "amqp://u:***@broker");
  assert.equal(redact("redis://user@cache:6379 and a:b@c"), "redis://user@cache:6379 and a:b@c");
});

Deno.test("redact hides a password holding a raw @ whole", () => {
  // A URL parser takes the last @ of the authority: so must the redactor.
  const url = "redis://u:p@ss@cache:6379/0";
  assert.equal(new URL(url).host, "cache:6379");
  assert.equal(redact(url), "redis://u:***@cache:6379/0");
  assert.equal(redact(`connect ${url} failed`), "connect redis://u:***@cache:6379/0 failed");
});

Deno.test("redact replaces each given secret, ignoring empty ones", () => {
  assert.equal(redact("WRONGPASS p@ss or p%40ss", ["p@ss", "p%40ss", ""]), "WRONGPASS *** or ***");
  assert.equal(redact("nothing to hide", []), "nothing to hide");
});
