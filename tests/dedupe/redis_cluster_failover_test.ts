/**
 * The redis store on a real Redis Cluster of 3 masters and 3 replicas
 * (`redis-cluster://`) while a master is SIGKILLed mid-run and its replica
 * takes over: no key is lost, the calls that fail meanwhile are retried as
 * `on_store_error: retry` does, and keys won twice are counted.
 */
import assert from "node:assert/strict";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import { startRedisCluster } from "../helpers/redis_cluster.ts";
import { waitFor } from "../helpers/wait_for.ts";

const SCOPE = "events/failover";
/** Short, so that a claim whose answer was lost with the master frees its key soon. */
const LEASE_MS = 1_500;
const KEYS = 3_000;
/** Keys each store works on at once. */
const WORKERS = 50;

/** What happened to the calls for one key, from one store. */
interface Tally {
  /** Calls that failed (each would be a message requeued by `on_store_error: retry`). */
  failedClaims: number;
  failedDones: number;
  /** Answers "busy" (another claim, maybe one whose answer was lost, holds the key). */
  busy: number;
}

/**
 * Asks for `key` until it is done: a won claim is marked done; a failed call
 * or a busy key is asked again shortly, as a requeued message would be.
 * Returns whether this store won the key.
 */
async function handleKey(store: RedisStore, key: string, tally: Tally): Promise<boolean> {
  const deadline = performance.now() + 10_000;
  const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
  for (;;) {
    if (performance.now() > deadline) throw new Error(`${key} still not done after 10 s`);
    let claim;
    try {
      claim = await store.claim(SCOPE, key, LEASE_MS);
    } catch {
      tally.failedClaims++;
      await pause();
      continue;
    }
    if (claim.status === "done") return false;
    if (claim.status === "busy") {
      tally.busy++;
      await pause();
      continue;
    }
    for (;;) {
      try {
        await store.done(SCOPE, key, claim.token);
        return true;
      } catch {
        tally.failedDones++;
        await pause();
      }
    }
  }
}

Deno.test("a redis-cluster:// store loses no key while a master is killed and its replica takes over", async () => {
  await using cluster = await startRedisCluster(3, { replicas: 1 });
  const roles = await cluster.roles();
  const victim = roles.indexOf("master");
  const heir = roles.indexOf(victim);
  assert.ok(victim >= 0 && heir >= 0, `a master with a replica: ${JSON.stringify(roles)}`);
  const stores = [0, 1].map(() =>
    new RedisStore({
      url: cluster.url,
      ttlMs: 60_000,
      commandTimeoutMs: 500,
      maxReconnectDelayMs: 200,
    })
  );
  try {
    await waitFor(() => stores.every((store) => store.connected), { message: "stores connected" });
    const keys = Array.from({ length: KEYS }, (_, i) => `event-${i}`);
    const tallies: Tally[] = stores.map(() => ({ failedClaims: 0, failedDones: 0, busy: 0 }));
    const wins = new Map<string, number>();
    /** Keys a store took longer than a lease to finish: held by a claim whose answer was lost. */
    let slowKeys = 0;
    let inFlight = 0;
    let inFlightAtKill = -1;
    let killedAt = 0;
    let promotedAt = 0;
    let failover: Promise<void> | undefined;
    const kill = () => {
      inFlightAtKill = inFlight;
      killedAt = performance.now();
      failover = cluster.nodes[victim]!.kill().then(() =>
        waitFor(async () => (await cluster.roles())[heir] === "master", {
          timeoutMs: 10_000,
          message: "the replica promoted",
        })
      ).then(() => {
        promotedAt = performance.now();
      });
    };
    const started = performance.now();
    // Each store works through every key, WORKERS keys at a time, as a daemon's in-flight window.
    await Promise.all(stores.map(async (store, s) => {
      let next = 0;
      await Promise.all(Array.from({ length: WORKERS }, async () => {
        while (next < keys.length) {
          const key = keys[next++]!;
          if (failover === undefined && wins.size >= KEYS / 3) kill();
          const begun = performance.now();
          inFlight++;
          try {
            if (await handleKey(store, key, tallies[s]!)) wins.set(key, (wins.get(key) ?? 0) + 1);
          } finally {
            inFlight--;
          }
          if (performance.now() - begun > LEASE_MS) slowKeys++;
        }
      }));
    }));
    await failover;
    const elapsed = performance.now() - started;
    assert.ok(inFlightAtKill > 0, "claims were in flight when the master died");
    assert.equal(wins.size, keys.length, "every key won at least once");
    // Afterwards every key reads as done from both stores, on the new master too.
    for (const key of keys) {
      assert.equal((await stores[0]!.claim(SCOPE, key, LEASE_MS)).status, "done", key);
    }
    const twice = [...wins.values()].filter((n) => n > 1).length;
    const failedClaims = tallies.reduce((sum, t) => sum + t.failedClaims, 0);
    const failedDones = tallies.reduce((sum, t) => sum + t.failedDones, 0);
    const busy = tallies.reduce((sum, t) => sum + t.busy, 0);
    assert.ok(failedClaims + failedDones > 0, "calls failed while the master was down");
    console.log(
      `redis cluster failover: ${KEYS} keys × 2 stores in ${Math.round(elapsed)} ms; ` +
        `${inFlightAtKill} keys in flight at the SIGKILL; replica promoted ` +
        `${Math.round(promotedAt - killedAt)} ms after it; ${failedClaims} failed claims and ` +
        `${failedDones} failed done marks (retried); ${busy} busy answers; ${slowKeys} keys ` +
        `finished later than a lease (${LEASE_MS} ms) after they began; ${twice} keys won twice`,
    );
  } finally {
    await Promise.all(stores.map((store) => store.close()));
  }
});
