import assert from "node:assert/strict";
import { allocateRdy, type RdyConnection } from "../../src/nsq/rdy.ts";

function connections(count: number, maxRdyCount = 2500): RdyConnection[] {
  return Array.from({ length: count }, () => ({ maxRdyCount }));
}

/** The allocation in connection order. */
function shares(maxInFlight: number, conns: readonly RdyConnection[]): number[] {
  const allocation = allocateRdy(maxInFlight, conns);
  assert.equal(allocation.length, conns.length, "one entry per connection");
  return allocation;
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

Deno.test("splits max_in_flight evenly when it divides", () => {
  assert.deepEqual(shares(6, connections(3)), [2, 2, 2]);
  assert.deepEqual(shares(7, connections(1)), [7]);
});

Deno.test("gives the remainder one apiece instead of losing it", () => {
  assert.deepEqual(shares(5, connections(2)), [3, 2]);
  assert.deepEqual(shares(5, connections(3)), [2, 2, 1]);
  assert.deepEqual(shares(10, connections(4)), [3, 3, 2, 2]);
});

Deno.test("never exceeds max_in_flight and uses all of it", () => {
  for (let n = 1; n <= 12; n++) {
    for (let max = 0; max <= 40; max++) {
      const values = shares(max, connections(n));
      assert.equal(sum(values), max, `max ${max} over ${n}: ${values}`);
      assert.ok(Math.max(...values) - Math.min(...values) <= 1, `even: ${values}`);
    }
  }
});

Deno.test("clamps each share to the nsqd's max RDY count", () => {
  const conns: RdyConnection[] = [
    { maxRdyCount: 2 },
    { maxRdyCount: 2500 },
  ];
  const [a, b] = shares(10, conns);
  assert.equal(a, 2);
  assert.ok(b! >= 5 && a + b! <= 10, `${a} + ${b}`);
  assert.deepEqual(shares(10_000, connections(2)), [2500, 2500]);
  assert.deepEqual(shares(5, connections(1, 0)), [0]);
});

Deno.test("no connections: nothing to allocate", () => {
  assert.equal(allocateRdy(5, []).length, 0);
  assert.equal(allocateRdy(0, []).length, 0);
});

Deno.test("zero, negative or fractional max_in_flight gives whole, non-negative shares", () => {
  assert.deepEqual(shares(0, connections(3)), [0, 0, 0]);
  assert.deepEqual(shares(-4, connections(2)), [0, 0]);
  assert.deepEqual(shares(5.9, connections(2)), [3, 2]);
  assert.deepEqual(shares(Infinity, connections(2, 100)), [100, 100]);
});

Deno.test("NaN max_in_flight gives RDY 0, not NaN (nsqjs throws on RDY NaN)", () => {
  assert.deepEqual(shares(NaN, connections(2)), [0, 0]);
});
