import assert from "node:assert/strict";
import { clusterSlot } from "../../src/dedupe/cluster_slot.ts";

Deno.test("clusterSlot agrees with the slots redis documents", () => {
  // CLUSTER KEYSLOT answers, and the CRC16 check value of "123456789" (0x31C3).
  assert.equal(clusterSlot("foo"), 12182);
  assert.equal(clusterSlot("123456789"), 0x31c3);
  assert.equal(clusterSlot(""), 0);
});

Deno.test("clusterSlot hashes only a non-empty hash tag", () => {
  assert.equal(clusterSlot("{user1000}.following"), clusterSlot("{user1000}.followers"));
  assert.equal(clusterSlot("{user1000}.following"), clusterSlot("user1000"));
  // An empty tag "{}" does not count: the whole key is hashed.
  assert.equal(clusterSlot("foo{}{bar}"), clusterSlot("foo{}{bar}"));
  assert.notEqual(clusterSlot("foo{}{bar}"), clusterSlot("bar"));
  // Only the first { and the } after it.
  assert.equal(clusterSlot("foo{{bar}}zap"), clusterSlot("{bar"));
  // Bytes, not UTF-16 units.
  assert.equal(clusterSlot("{é}x"), clusterSlot("é"));
});
