import assert from "node:assert/strict";
import {
  type PlannedConnection,
  planRdy,
  type RdyPlanInput,
  scarceSliceMs,
} from "../../src/nsq/rdy_planner.ts";

const IDLE: PlannedConnection = {
  maxRdyCount: 2500,
  rdy: 0,
  inFlight: 0,
  grantedAt: -Infinity,
  releasedAt: 0,
  activeAt: -Infinity,
};

function input(
  total: number,
  connections: readonly Partial<PlannedConnection>[],
  extra: Partial<RdyPlanInput> = {},
): RdyPlanInput {
  return {
    total,
    connections: connections.map((c) => ({ ...IDLE, ...c })),
    inFlightElsewhere: 0,
    now: 10_000,
    sliceMs: 400,
    idleMs: 100,
    ...extra,
  };
}

Deno.test("planRdy: one slot or more per connection splits evenly and needs no rotation", () => {
  const plan = planRdy(input(7, [{}, {}, {}]));
  assert.deepEqual(plan.targets, [3, 2, 2]);
  assert.deepEqual(plan.rdy, [3, 2, 2]);
  assert.equal(plan.short, false);
  assert.equal(plan.nextAt, null);
});

Deno.test("planRdy: a raise waits for what other connections still have in flight", () => {
  // a had all 4 and still runs 3 of them; b just connected.
  const plan = planRdy(input(4, [{ rdy: 4, inFlight: 3 }, {}]));
  assert.deepEqual(plan.targets, [2, 2]);
  assert.deepEqual(plan.rdy, [2, 1]);
  assert.equal(plan.short, true);
  // Once a's handlers are down to 2, b gets the rest.
  const later = planRdy(input(4, [{ rdy: 2, inFlight: 2 }, { rdy: 1 }]));
  assert.deepEqual(later.rdy, [2, 2]);
  assert.equal(later.short, false);
});

Deno.test("planRdy: messages still running from a closed connection hold their slots", () => {
  const plan = planRdy(input(3, [{}], { inFlightElsewhere: 2 }));
  assert.deepEqual(plan.rdy, [1]);
  assert.equal(plan.short, true);
});

Deno.test("planRdy: paused or draining (total 0) lowers every RDY to 0", () => {
  const plan = planRdy(input(0, [{ rdy: 3, inFlight: 1 }, { rdy: 1, grantedAt: 9_990 }, {}]));
  assert.deepEqual(plan.rdy, [0, 0, 0]);
  assert.equal(plan.nextAt, null);
});

Deno.test("planRdy: a scarce slot goes to the connection that waited longest without one", () => {
  const plan = planRdy(input(1, [{ releasedAt: 9_000 }, { releasedAt: 8_000 }, {
    releasedAt: 9_500,
  }]));
  assert.deepEqual(plan.rdy, [0, 1, 0]);
  assert.equal(plan.nextAt, 10_000 + 100, "a new holder is looked at again after idleMs");
});

Deno.test("planRdy: a holder keeps its slot while messages come, for at most its slice", () => {
  const busy = { rdy: 1, grantedAt: 9_800, activeAt: 9_990 };
  const kept = planRdy(input(1, [busy, { releasedAt: 0 }]));
  assert.deepEqual(kept.rdy, [1, 0]);
  assert.equal(kept.nextAt, 9_990 + 100);
  // Slice over (granted 400 ms ago): the slot moves even though messages still come.
  const moved = planRdy(input(1, [{ ...busy, grantedAt: 9_600 }, { releasedAt: 0 }]));
  assert.deepEqual(moved.targets, [0, 1]);
  assert.deepEqual(moved.rdy, [0, 1]);
});

Deno.test("planRdy: an idle holder gives its slot up before its slice ends", () => {
  const plan = planRdy(input(1, [{ rdy: 1, grantedAt: 9_850, activeAt: 9_860 }, {}]));
  assert.deepEqual(plan.rdy, [0, 1]);
});

Deno.test("planRdy: a moved slot waits until the old holder's message is answered", () => {
  const plan = planRdy(input(1, [{ rdy: 1, inFlight: 1, grantedAt: 0, activeAt: 0 }, {}]));
  assert.deepEqual(plan.targets, [0, 1]);
  assert.deepEqual(plan.rdy, [0, 0]);
  assert.equal(plan.short, true);
});

Deno.test("planRdy: the in-flight bound holds for any state (randomised)", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 5_000; round++) {
    const n = 1 + Math.floor(random() * 8);
    const total = Math.floor(random() * 12);
    const connections = Array.from({ length: n }, () => ({
      rdy: Math.floor(random() * 4),
      inFlight: Math.floor(random() * 4),
      grantedAt: 10_000 - Math.floor(random() * 1_000),
      releasedAt: 10_000 - Math.floor(random() * 1_000),
      activeAt: 10_000 - Math.floor(random() * 1_000),
    }));
    const elsewhere = Math.floor(random() * 3);
    const plan = planRdy(input(total, connections, { inFlightElsewhere: elsewhere }));
    // What nsqd may send is max(RDY, in flight) per connection: lowering is
    // immediate, so only what the plan adds on top of that must fit the total.
    let lowered = elsewhere;
    let after = elsewhere;
    for (const [i, c] of connections.entries()) {
      lowered += Math.max(Math.min(c.rdy, plan.targets[i]!), c.inFlight);
      after += Math.max(plan.rdy[i]!, c.inFlight);
      assert.ok(plan.rdy[i]! <= plan.targets[i]!, `never above target: ${JSON.stringify(plan)}`);
      assert.ok(plan.rdy[i]! >= 0 && Number.isInteger(plan.rdy[i]));
    }
    assert.ok(after <= Math.max(total, lowered), `${after} > ${total}: ${JSON.stringify(plan)}`);
    assert.equal(plan.targets.reduce((a, b) => a + b, 0), Math.min(total, total >= n ? total : n));
  }
});

/**
 * Simulates a consumer: `n` nsqd that always have messages waiting, `total`
 * slots, a handler that takes `handleMs`, time in 10 ms steps. Returns how long
 * each nsqd waited at most between two messages.
 */
function simulate(n: number, total: number, handleMs: number, durationMs: number): number[] {
  const sliceMs = scarceSliceMs(total, n);
  const conns = Array.from({ length: n }, () => ({
    ...IDLE,
    loweredAt: -Infinity,
    loweredFrom: 0,
    answering: false,
    releasedAt: 0,
    doneAt: [] as number[],
    lastServed: 0,
    longestWait: 0,
  }));
  let nextAt: number | null = 0;
  for (let now = 0; now <= durationMs; now += 10) {
    let answered = false;
    for (const c of conns) {
      const before = c.doneAt.length;
      c.doneAt = c.doneAt.filter((at) => at > now);
      c.inFlight = c.doneAt.length;
      // The plan runs before the answers go out, as the consumer's does.
      c.answering = c.doneAt.length < before;
      answered ||= c.answering;
    }
    if (answered || (nextAt !== null && now >= nextAt)) {
      const plan = planRdy({
        total,
        connections: conns,
        inFlightElsewhere: 0,
        now,
        sliceMs,
        idleMs: 100,
        lowerGraceMs: 50,
      });
      for (const [i, c] of conns.entries()) {
        const rdy = plan.rdy[i]!;
        if (c.rdy === 0 && rdy > 0) c.grantedAt = now;
        if (c.rdy > 0 && rdy === 0) c.releasedAt = now;
        if (rdy < c.rdy && c.rdy > c.inFlight + (c.answering ? 1 : 0)) {
          c.loweredAt = now;
          c.loweredFrom = c.rdy;
        }
        c.rdy = rdy;
      }
      nextAt = plan.nextAt;
    }
    // nsqd sends while in flight < RDY; every nsqd has a backlog.
    for (const c of conns) {
      while (c.inFlight < c.rdy) {
        c.doneAt.push(now + handleMs);
        c.inFlight++;
        c.activeAt = now;
        c.longestWait = Math.max(c.longestWait, now - c.lastServed);
        c.lastServed = now;
      }
    }
  }
  return conns.map((c) => Math.max(c.longestWait, durationMs - c.lastServed));
}

Deno.test("planRdy: with fewer slots than nsqd, every nsqd is served within about a second", () => {
  for (const [n, total, handleMs] of [[5, 2, 20], [5, 2, 1], [20, 1, 5], [3, 2, 50], [8, 7, 10]]) {
    const waits = simulate(n!, total!, handleMs!, 20_000);
    const worst = Math.max(...waits);
    assert.ok(worst <= 1_300, `${n} nsqd, ${total} slots, ${handleMs} ms: waits ${waits}`);
  }
});

Deno.test("planRdy: a lowered RDY counts at its old value until nsqd has had time to read it", () => {
  // a held 1 with nothing in flight: nsqd may be sending it a message right now.
  const moving = planRdy(input(1, [{ rdy: 1, grantedAt: 0, activeAt: 0 }, {}], {
    lowerGraceMs: 50,
  }));
  assert.deepEqual(moving.targets, [0, 1]);
  assert.deepEqual(moving.rdy, [0, 0], "b waits for the grace");
  assert.equal(moving.short, true);
  assert.equal(moving.nextAt, 10_000 + 50);
  const during = planRdy(input(1, [{ loweredFrom: 1, loweredAt: 9_980, releasedAt: 9_980 }, {}], {
    lowerGraceMs: 50,
  }));
  assert.deepEqual(during.rdy, [0, 0]);
  assert.equal(during.nextAt, 9_980 + 50);
  const after = planRdy(input(1, [{ loweredFrom: 1, loweredAt: 9_940, releasedAt: 9_940 }, {}], {
    lowerGraceMs: 50,
  }));
  assert.equal(after.rdy.reduce((a, b) => a + b, 0), 1);
  // Without a grace the slot moves at once.
  const at = planRdy(input(1, [{ rdy: 1, grantedAt: 0, activeAt: 0 }, {}]));
  assert.deepEqual(at.rdy, [0, 1]);
});

Deno.test("planRdy: when not every raise fits, the connection that waited longest is raised first", () => {
  // b's slot is moving (nsqd may still send on it); one slot is free now, and c
  // has waited longer than a: c gets it, whatever the connections' order.
  const plan = planRdy(input(2, [
    { releasedAt: 9_000 },
    { rdy: 1, grantedAt: 9_000, activeAt: 9_000 },
    { releasedAt: 0 },
  ], { lowerGraceMs: 50 }));
  assert.deepEqual(plan.targets, [1, 0, 1]);
  assert.deepEqual(plan.rdy, [0, 0, 1]);
});

Deno.test("planRdy: a slot just taken from a connection is not handed straight back to it", () => {
  // a and b are idle and were lowered a moment ago; c has waited since the start.
  const plan = planRdy(input(2, [
    { loweredFrom: 1, loweredAt: 9_990, releasedAt: 9_990 },
    { loweredFrom: 1, loweredAt: 9_995, releasedAt: 9_995 },
    { releasedAt: 0 },
  ], { lowerGraceMs: 50 }));
  assert.deepEqual(plan.targets, [0, 0, 1]);
  // Both graces hold a slot until 10_040: c waits for the first to end.
  assert.deepEqual(plan.rdy, [0, 0, 0]);
  assert.equal(plan.nextAt, 9_990 + 50);
});

Deno.test("planRdy: a RDY lowered just ahead of its connection's FIN needs no grace", () => {
  // nsqd reads RDY 0 before the FIN, so it never sees a free slot on a.
  const plan = planRdy(input(1, [{ rdy: 1, grantedAt: 0, activeAt: 0, answering: true }, {}], {
    lowerGraceMs: 50,
  }));
  assert.deepEqual(plan.rdy, [0, 1]);
});
