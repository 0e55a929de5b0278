/**
 * The DedupeStore contract (src/dedupe/store.ts), run against every store:
 * memory, sqlite (a temporary file) and redis (a real redis-server).
 */

import assert from "node:assert/strict";
import { MemoryStore } from "../../src/dedupe/memory_store.ts";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import { SqliteStore } from "../../src/dedupe/sqlite_store.ts";
import type { Claim, DedupeStore } from "../../src/dedupe/store.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startRedis } from "../helpers/redis_server.ts";

const SCOPE = "pageviews/counter";

interface Fixture extends AsyncDisposable {
  readonly store: DedupeStore;
}

type Open = (ttlMs: number) => Promise<Fixture>;

const STORES: Record<string, Open> = {
  memory: (ttlMs) => {
    const store = new MemoryStore({ capacity: 1_000, ttlMs });
    return Promise.resolve({ store, [Symbol.asyncDispose]: () => store.close() });
  },
  sqlite: async (ttlMs) => {
    const dir = await Deno.makeTempDir({ prefix: "nsqworker_sqlite_" });
    const store = new SqliteStore({ path: `${dir}/dedupe.db`, ttlMs });
    return {
      store,
      async [Symbol.asyncDispose]() {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
  redis: (ttlMs) => redisFixture(ttlMs, false),
  // The claim of redis before 7.0.
  "redis (Lua claim)": (ttlMs) => redisFixture(ttlMs, true),
};

async function redisFixture(ttlMs: number, claimScript: boolean): Promise<Fixture> {
  const redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs, claimScript });
  return {
    store,
    async [Symbol.asyncDispose]() {
      await store.close();
      await redis.close();
    },
  };
}

async function claim(store: DedupeStore, key: string, leaseMs = 60_000): Promise<Claim> {
  return await store.claim(SCOPE, key, leaseMs);
}

async function token(store: DedupeStore, key: string, leaseMs = 60_000): Promise<string> {
  const result = await claim(store, key, leaseMs);
  assert.equal(result.status, "claimed");
  return (result as { token: string }).token;
}

async function status(store: DedupeStore, key: string): Promise<Claim["status"]> {
  const result = await claim(store, key, 60_000);
  if (result.status === "claimed") await store.release(SCOPE, key, result.token);
  return result.status;
}

for (const [name, open] of Object.entries(STORES)) {
  Deno.test(`${name} store: free → claimed → busy; done → done; release frees`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const first = await token(store, "e1");
    assert.equal((await claim(store, "e1")).status, "busy");
    await store.done(SCOPE, "e1", first);
    assert.equal((await claim(store, "e1")).status, "done");

    const second = await token(store, "e2");
    await store.release(SCOPE, "e2", second);
    const third = await token(store, "e2");
    assert.notEqual(third, second);
  });

  Deno.test(`${name} store: only the claim's owner releases or renews it`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const stale = await token(store, "k", 100);
    await waitFor(async () => (await claim(store, "k", 60_000)).status === "claimed", {
      message: "the lapsed lease to be claimed again",
    });
    await store.release(SCOPE, "k", stale);
    await store.renew(SCOPE, "k", stale, 1);
    assert.equal((await claim(store, "k")).status, "busy");
  });

  Deno.test(`${name} store: done wins even after the lease was lost to another claim`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const stale = await token(store, "k", 100);
    let other = "";
    await waitFor(async () => {
      const result = await claim(store, "k", 60_000);
      if (result.status === "claimed") other = result.token;
      return result.status === "claimed";
    });
    await store.done(SCOPE, "k", stale);
    assert.equal((await claim(store, "k")).status, "done");
    // The other holder's release cannot undo the done mark.
    await store.release(SCOPE, "k", other);
    assert.equal((await claim(store, "k")).status, "done");
  });

  Deno.test(`${name} store: renew keeps a claim past its first lease`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const owner = await token(store, "k", 300);
    await store.renew(SCOPE, "k", owner, 60_000);
    await token(store, "other", 300);
    await waitFor(async () => (await status(store, "other")) === "claimed", {
      message: "the lease that was not renewed to lapse",
    });
    assert.equal((await claim(store, "k")).status, "busy");
  });

  Deno.test(`${name} store: a done key is forgotten after the ttl`, async () => {
    await using fixture = await open(200);
    const { store } = fixture;
    await store.done(SCOPE, "k", await token(store, "k"));
    assert.equal((await claim(store, "k")).status, "done");
    await waitFor(async () => (await status(store, "k")) === "claimed", {
      message: "the done mark to expire",
    });
  });

  Deno.test(`${name} store: scopes and keys are separate, whatever their characters`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const keys = ["a:b", "a", "ключ 🔑", "x".repeat(500), "with\nnewline", ""];
    for (const key of keys) await store.done(SCOPE, key, await token(store, key));
    for (const key of keys) assert.equal((await claim(store, key)).status, "done", key);
    assert.equal(await status(store, "b"), "claimed");
    assert.equal((await store.claim("pageviews/other", "a", 60_000)).status, "claimed");
    assert.equal((await store.claim("pageviews", "counter:a", 60_000)).status, "claimed");
  });

  Deno.test(`${name} store: concurrent claims of one key: exactly one wins`, async () => {
    await using fixture = await open(60_000);
    const { store } = fixture;
    const results = await Promise.all(Array.from({ length: 20 }, () => claim(store, "hot")));
    assert.equal(results.filter((r) => r.status === "claimed").length, 1);
    assert.equal(results.filter((r) => r.status === "busy").length, 19);
  });

  Deno.test(`${name} store: close is safe to call twice`, async () => {
    await using fixture = await open(60_000);
    await Promise.all([fixture.store.close(), fixture.store.close()]);
    await fixture.store.close();
  });
}
