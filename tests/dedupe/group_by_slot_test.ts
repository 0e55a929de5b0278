import assert from "node:assert/strict";
import { clusterSlot } from "../../src/dedupe/cluster_slot.ts";
import { groupBySlot } from "../../src/dedupe/group_by_slot.ts";

Deno.test("groupBySlot: one group per slot, in the order of each slot's first call", () => {
  // "foo" and "{foo}:x" share a slot; "bar" has another.
  assert.equal(clusterSlot("{foo}:x"), clusterSlot("foo"));
  assert.notEqual(clusterSlot("bar"), clusterSlot("foo"));
  const calls = ["bar", "foo", "bar", "{foo}:x"].map((key, n) => ({ key, n }));
  const groups = groupBySlot(calls).map((group) => group.map((call) => call.n));
  assert.deepEqual(groups, [[0, 2], [1, 3]]);
  assert.deepEqual(groupBySlot([]), []);
});
