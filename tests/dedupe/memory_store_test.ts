import assert from "node:assert/strict";
import { MemoryStore } from "../../src/dedupe/memory_store.ts";
import type { Claim } from "../../src/dedupe/store.ts";

const SCOPE = "pageviews/counter";

/** A store on a hand-driven clock. */
function setup(options: { capacity?: number; ttlMs?: number } = {}) {
  const clock = { now: 1_000 };
  const store = new MemoryStore({
    capacity: options.capacity ?? 100,
    ttlMs: options.ttlMs ?? 60_000,
    now: () => clock.now,
  });
  return { store, clock };
}

function token(claim: Claim): string {
  assert.equal(claim.status, "claimed");
  return claim.token;
}

Deno.test("claim, then done: later claims see the key as done", () => {
  const { store } = setup();
  const claim = store.claim(SCOPE, "a", 1_000);
  store.done(SCOPE, "a", token(claim));
  assert.deepEqual(store.claim(SCOPE, "a", 1_000), { status: "done" });
  assert.deepEqual(store.claim(SCOPE, "a", 1_000), { status: "done" });
  assert.equal(store.size, 1);
});

Deno.test("a live claim makes the key busy; tokens are unique", () => {
  const { store } = setup();
  const a = token(store.claim(SCOPE, "a", 1_000));
  assert.deepEqual(store.claim(SCOPE, "a", 1_000), { status: "busy" });
  const b = token(store.claim(SCOPE, "b", 1_000));
  assert.notEqual(a, b);
});

Deno.test("release frees the key for the next claim", () => {
  const { store } = setup();
  const first = token(store.claim(SCOPE, "a", 1_000));
  store.release(SCOPE, "a", first);
  const second = token(store.claim(SCOPE, "a", 1_000));
  assert.notEqual(second, first);
  assert.equal(store.size, 0);
});

Deno.test("a claim expires after its lease; renew extends it", () => {
  const { store, clock } = setup();
  const first = token(store.claim(SCOPE, "a", 1_000));
  clock.now += 999;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "busy");
  store.renew(SCOPE, "a", first, 1_000);
  clock.now += 999;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "busy");
  clock.now += 1;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "claimed");
});

Deno.test("a stale token cannot release or renew a newer claim", () => {
  const { store, clock } = setup();
  const stale = token(store.claim(SCOPE, "a", 1_000));
  clock.now += 1_000;
  token(store.claim(SCOPE, "a", 1_000));
  store.release(SCOPE, "a", stale);
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "busy");
  store.renew(SCOPE, "a", stale, 60_000);
  clock.now += 1_000;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "claimed");
});

Deno.test("a stale token still marks the key done, and the newer holder finds it done", () => {
  const { store, clock } = setup();
  const stale = token(store.claim(SCOPE, "a", 1_000));
  clock.now += 1_000;
  const fresh = token(store.claim(SCOPE, "a", 1_000));
  store.done(SCOPE, "a", stale);
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "done");
  // The newer holder can neither release nor renew the done mark; finishing changes nothing.
  store.release(SCOPE, "a", fresh);
  store.renew(SCOPE, "a", fresh, 1_000);
  for (const other of ["", "0", "-1", "no-claim"]) store.release(SCOPE, "a", other);
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "done");
  store.done(SCOPE, "a", fresh);
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "done");
  assert.equal(store.size, 1);
});

Deno.test("a done key expires after the ttl; a hit does not extend it", () => {
  const { store, clock } = setup({ ttlMs: 10_000 });
  store.done(SCOPE, "a", token(store.claim(SCOPE, "a", 1_000)));
  clock.now += 9_999;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "done");
  clock.now += 1;
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "claimed");
  assert.equal(store.size, 0);
});

Deno.test("expired done keys are purged as new ones are inserted", () => {
  const { store, clock } = setup({ ttlMs: 10_000 });
  for (const key of ["a", "b", "c", "d"]) {
    store.done(SCOPE, key, token(store.claim(SCOPE, key, 1_000)));
  }
  assert.equal(store.size, 4);
  clock.now += 10_000;
  store.done(SCOPE, "e", token(store.claim(SCOPE, "e", 1_000)));
  assert.equal(store.size, 3, "two expired keys dropped by one insert");
  store.done(SCOPE, "f", token(store.claim(SCOPE, "f", 1_000)));
  assert.equal(store.size, 2, "the other two by the next");
});

Deno.test("capacity bounds the done keys, the least recently used goes first", () => {
  const { store } = setup({ capacity: 3 });
  for (const key of ["a", "b", "c"]) store.done(SCOPE, key, token(store.claim(SCOPE, key, 1_000)));
  // A hit on "a" makes "b" the least recently used.
  assert.equal(store.claim(SCOPE, "a", 1_000).status, "done");
  store.done(SCOPE, "d", token(store.claim(SCOPE, "d", 1_000)));
  assert.equal(store.size, 3);
  assert.equal(store.claim(SCOPE, "b", 1_000).status, "claimed");
  for (const key of ["a", "c", "d"]) assert.equal(store.claim(SCOPE, key, 1_000).status, "done");

  for (let i = 0; i < 1_000; i++) store.done(SCOPE, `k${i}`, "no-claim");
  assert.equal(store.size, 3);
});

Deno.test("a live claim is never evicted, however many done keys pass through", () => {
  const { store, clock } = setup({ capacity: 2 });
  const held = token(store.claim(SCOPE, "held", 1_000));
  for (let i = 0; i < 100; i++) {
    store.done(SCOPE, `k${i}`, token(store.claim(SCOPE, `k${i}`, 1_000)));
  }
  assert.equal(store.size, 2);
  assert.equal(store.claim(SCOPE, "held", 1_000).status, "busy");
  store.done(SCOPE, "held", held);
  assert.equal(store.claim(SCOPE, "held", 1_000).status, "done");
  // Lapsed claims beyond capacity are purged as new ones come, and their keys stay claimable.
  for (let i = 0; i < 10; i++) token(store.claim(SCOPE, `lapsing${i}`, 10));
  clock.now += 10;
  for (let i = 0; i < 10; i++) token(store.claim(SCOPE, `lapsing${i}`, 10));
  // More live claims than capacity: none is purged.
  for (let i = 0; i < 5; i++) token(store.claim(SCOPE, `live${i}`, 60_000));
  for (let i = 0; i < 5; i++) assert.equal(store.claim(SCOPE, `live${i}`, 1_000).status, "busy");
});

Deno.test("many scopes share one capacity; a scope emptied and used again starts clean", () => {
  const { store } = setup({ capacity: 10 });
  const scopes = Array.from({ length: 1_000 }, (_, i) => `pageviews/counter@10.0.0.${i}:4150`);
  for (const scope of scopes) store.done(scope, "id", token(store.claim(scope, "id", 1_000)));
  assert.equal(store.size, 10);
  for (const scope of scopes.slice(-10)) {
    assert.equal(store.claim(scope, "id", 1_000).status, "done");
  }
  // The first scopes lost their only key to the capacity; they start over.
  const first = scopes[0]!;
  store.done(first, "id", token(store.claim(first, "id", 1_000)));
  assert.equal(store.claim(first, "id", 1_000).status, "done");
  assert.equal(store.claim(scopes[1]!, "id", 1_000).status, "claimed");
  assert.equal(store.size, 10);
  // A scope emptied by a release, then used again at once, is the same scope afterwards.
  const scope = "pageviews/archive";
  store.release(scope, "x", token(store.claim(scope, "x", 1_000)));
  store.done(scope, "y", token(store.claim(scope, "y", 1_000)));
  store.claim(SCOPE, "other", 1_000);
  assert.equal(store.claim(scope, "y", 1_000).status, "done");
});

Deno.test("keys are scoped: the same key in two entries is two keys", () => {
  const { store } = setup();
  store.done(SCOPE, "a", token(store.claim(SCOPE, "a", 1_000)));
  assert.equal(store.claim("pageviews/archive", "a", 1_000).status, "claimed");
  assert.equal(store.claim("pageviews/archive", "a", 1_000).status, "busy");
  // Scope and key are not simply concatenated.
  assert.equal(store.claim("pageviews/counte", "ra", 1_000).status, "claimed");
});

Deno.test("close forgets everything and can be called twice", async () => {
  const { store } = setup();
  store.done(SCOPE, "a", token(store.claim(SCOPE, "a", 1_000)));
  await store.close();
  await store.close();
  assert.equal(store.size, 0);
});

Deno.test("bad options are refused", () => {
  assert.throws(
    () => new MemoryStore({ capacity: 0, ttlMs: 1_000 }),
    new RangeError(
      "Cannot create a memory store as 'capacity' must be a positive integer: current value is 0",
    ),
  );
  assert.throws(() => new MemoryStore({ capacity: 1.5, ttlMs: 1_000 }), RangeError);
  assert.throws(() => new MemoryStore({ capacity: 10, ttlMs: 0 }), RangeError);
  assert.throws(() => new MemoryStore({ capacity: 10, ttlMs: Number.NaN }), RangeError);
});

Deno.test("check and markDone: a key is free, then done; a live claim is busy; an expired one is free", () => {
  const { store, clock } = setup({ ttlMs: 1_000 });
  assert.equal(store.check(SCOPE, "a"), "free");
  store.markDone(SCOPE, "a");
  assert.equal(store.check(SCOPE, "a"), "done");
  assert.deepEqual(store.claim(SCOPE, "a", 1_000), { status: "done" });
  assert.equal(store.size, 1);
  token(store.claim(SCOPE, "b", 500));
  assert.equal(store.check(SCOPE, "b"), "busy");
  clock.now += 501;
  assert.equal(store.check(SCOPE, "b"), "free");
  store.markDone(SCOPE, "b");
  assert.equal(store.check(SCOPE, "b"), "done");
  clock.now += 1_000;
  assert.equal(store.check(SCOPE, "a"), "free");
  assert.equal(store.check("other/scope", "a"), "free");
});

Deno.test("markDone without a check just before, or after the table changed, still marks its own key", () => {
  const { store } = setup({ capacity: 2 });
  assert.equal(store.check(SCOPE, "a"), "free");
  // Another key is entered between the check and markDone: the remembered place is stale.
  store.markDone(SCOPE, "b");
  store.markDone(SCOPE, "a");
  assert.equal(store.size, 2);
  store.markDone("other/scope", "c");
  assert.equal(store.size, 2);
  assert.equal(store.check(SCOPE, "b"), "free", "b, least recently used, was evicted");
  assert.equal(store.check(SCOPE, "a"), "done");
  assert.equal(store.check("other/scope", "c"), "done");
});
