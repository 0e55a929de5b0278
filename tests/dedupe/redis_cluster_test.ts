/**
 * The redis store on a real 3-master Redis Cluster (`redis-cluster://`):
 * claims stay exclusive between two stores while slots migrate under them.
 */
import assert from "node:assert/strict";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import { startRedisCluster } from "../helpers/redis_cluster.ts";
import { waitFor } from "../helpers/wait_for.ts";

const SCOPE = "events/cluster";

/**
 * Claims `key` until the store answers (a failed call is retried, as
 * `on_store_error: retry` requeues the message), runs nothing, and marks a
 * won claim done. Returns the answer and how many calls failed.
 */
async function claimAndFinish(store: RedisStore, key: string): Promise<[string, number]> {
  let failures = 0;
  for (;;) {
    try {
      const claim = await store.claim(SCOPE, key, 10_000);
      if (claim.status === "claimed") await store.done(SCOPE, key, claim.token);
      return [claim.status, failures];
    } catch (error) {
      // A call that can never succeed (as opposed to an outage) must fail the test, not spin.
      if (++failures > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

Deno.test("a redis-cluster:// store keeps claims exclusive across stores while slots migrate", async () => {
  await using cluster = await startRedisCluster(3);
  const stores = [0, 1].map(() =>
    new RedisStore({ url: cluster.url, ttlMs: 60_000, commandTimeoutMs: 2_000 })
  );
  try {
    await waitFor(() => stores.every((store) => store.connected), { message: "stores connected" });
    const keys = Array.from({ length: 3_000 }, (_, i) => `event-${i}`);
    let migrating = true;
    const reshard = cluster.reshard(0, 1, 2_000).finally(() => migrating = false);
    const answers: string[][] = [[], []];
    let failures = 0;
    let duringMigration = 0;
    // Both stores ask for every key, a turn of 50 keys at a time (batches of several slots).
    for (let at = 0; at < keys.length; at += 50) {
      const turn = keys.slice(at, at + 50);
      const results = await Promise.all(
        stores.flatMap((store, s) =>
          turn.map(async (key) => {
            const [status, failed] = await claimAndFinish(store, key);
            answers[s]!.push(`${key} ${status}`);
            failures += failed;
          })
        ),
      );
      if (migrating) duringMigration += results.length;
    }
    await reshard;
    const won = new Map<string, number>();
    for (const list of answers) {
      for (const line of list) {
        const [key, status] = line.split(" ");
        if (status === "claimed") won.set(key!, (won.get(key!) ?? 0) + 1);
      }
    }
    assert.equal(won.size, keys.length, "every key was claimed by one store");
    assert.deepEqual([...won].filter(([, n]) => n !== 1), [], "keys claimed twice");
    assert.ok(duringMigration > 0, "some claims ran while slots migrated");
    // Afterwards every key reads as done, wherever its slot went.
    for (const key of keys.slice(0, 200)) {
      assert.equal((await stores[0]!.claim(SCOPE, key, 10_000)).status, "done");
    }
    console.log(
      `redis cluster: ${keys.length} keys × 2 stores, ${duringMigration} calls during the ` +
        `migration of 2000 slots, ${failures} failed calls (retried)`,
    );
  } finally {
    await Promise.all(stores.map((store) => store.close()));
  }
});
