import assert from "node:assert/strict";
import { KeyTable } from "../../src/dedupe/key_table.ts";

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

Deno.test("find answers the slot added for a scope and key, -1 otherwise", () => {
  const table = new KeyTable(7);
  const hash = table.hash(1, "0a1b2c3d4e5f6789");
  table.add(3, 1, "0a1b2c3d4e5f6789", hash);
  assert.equal(table.find(1, "0a1b2c3d4e5f6789", hash), 3);
  assert.equal(table.find(2, "0a1b2c3d4e5f6789", table.hash(2, "0a1b2c3d4e5f6789")), -1);
  assert.equal(table.find(1, "0a1b2c3d4e5f678", table.hash(1, "0a1b2c3d4e5f678")), -1);
  table.remove(3);
  assert.equal(table.find(1, "0a1b2c3d4e5f6789", hash), -1);
  assert.equal(table.size, 0);
});

Deno.test("keys that share a hash are told apart by every character, short or long", () => {
  const table = new KeyTable(7);
  const keys = ["ab", "bb", "ba", "b", "", "x".repeat(40), "y" + "x".repeat(39), "ключ 🔑"];
  keys.forEach((key, slot) => table.add(slot, 1, key, 5));
  keys.forEach((key, slot) => assert.equal(table.find(1, key, 5), slot, key));
  assert.equal(table.find(1, "cb", 5), -1);
  assert.equal(table.find(1, "x".repeat(39) + "y", 5), -1);
  assert.equal(table.find(2, "ab", 5), -1);
});

Deno.test("the hash depends on the seed, the scope and every character", () => {
  const a = new KeyTable(1);
  const b = new KeyTable(2);
  assert.notEqual(a.hash(1, "key"), b.hash(1, "key"));
  assert.notEqual(a.hash(1, "key"), a.hash(2, "key"));
  assert.notEqual(a.hash(1, "keyA"), a.hash(1, "keyB"));
  assert.notEqual(a.hash(1, "ab"), a.hash(1, "ba"));
});

// Hashes drawn from a handful of values make long runs of colliding cells,
// including runs that wrap past the end of the cells, where a deletion by
// backward shift has to move the right cells and only those.
Deno.test("adds and removes under heavy collisions agree with a Map, through growth", () => {
  for (const seed of [1, 2, 3]) {
    const next = random(seed);
    const table = new KeyTable(seed);
    const model = new Map<string, number>();
    const hashOf = new Map<string, number>();
    const freeSlots = Array.from({ length: 400 }, (_, i) => 399 - i);
    for (let step = 0; step < 20_000; step++) {
      // Keys short enough to be copied into the table, and longer ones kept as strings.
      const n = Math.floor(next() * 600);
      const name = n % 3 === 0 ? `long key ${n} `.repeat(3) : `k${n}`;
      const scope = name.length % 2;
      const id = `${scope}:${name}`;
      // Most home on the last eight cells, whatever the table's size, some anywhere.
      const hash = hashOf.get(id) ??
        (next() < 0.7 ? -1 - Math.floor(next() * 8) : (next() * 2 ** 31) | 0);
      hashOf.set(id, hash);
      const slot = model.get(id);
      if (slot === undefined && freeSlots.length > 0) {
        const taken = freeSlots.pop()!;
        table.add(taken, scope, name, hash);
        model.set(id, taken);
      } else if (slot !== undefined && next() < 0.6) {
        table.remove(slot);
        model.delete(id);
        freeSlots.push(slot);
      }
      if (step % 97 === 0) {
        for (const [known, expected] of hashOf) {
          const [s, n] = [Number(known.slice(0, 1)), known.slice(2)];
          assert.equal(table.find(s, n, expected), model.get(known) ?? -1, `${known} at ${step}`);
        }
        assert.equal(table.size, model.size);
      }
    }
  }
});
