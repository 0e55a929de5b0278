/**
 * Store-level cost of dedupe: claim + done per message for each store, and
 * the measurement behind the sqlite store's implementation (node:sqlite
 * with group commit, against node:sqlite one commit per call and Deno KV).
 *
 * Usage (redis optional: pass a URL to include it):
 *
 *   deno run --unstable-kv --allow-read --allow-write --allow-env --allow-net \
 *     bench/dedupe_stores.ts [--messages N] [--redis redis://127.0.0.1:6379/0]
 *
 * Each store handles N fresh keys: claim, then done, as the task runner does
 * for a handler that succeeds. "in flight 1" awaits each message before the
 * next (latency-bound); "in flight 50" keeps 50 messages going, like an
 * entry with max_in_flight 50 (throughput-bound).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { MemoryStore } from "../src/dedupe/memory_store.ts";
import { RedisStore } from "../src/dedupe/redis_store.ts";
import { SqliteStore } from "../src/dedupe/sqlite_store.ts";
import type { Claim, DedupeStore } from "../src/dedupe/store.ts";

const SCOPE = "bench/dedupe";
const LEASE_MS = 70_000;
const TTL_MS = 86_400_000;

/**
 * The sqlite store as it would be without group commit: one autocommit
 * transaction per call, answered synchronously.
 */
class AutocommitSqlite implements DedupeStore {
  readonly #db: DatabaseSync;
  readonly #claim;
  readonly #state;
  readonly #done;
  #n = 0;

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    this.#db.exec(`CREATE TABLE IF NOT EXISTS dedupe_keys (scope TEXT NOT NULL, key TEXT NOT NULL,
      token TEXT, expires_at INTEGER NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS dedupe_keys_expires_at ON dedupe_keys (expires_at);`);
    this.#claim = this.#db.prepare(
      `INSERT INTO dedupe_keys VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE
       SET token = excluded.token, expires_at = excluded.expires_at
       WHERE dedupe_keys.expires_at <= ? RETURNING token`,
    );
    this.#state = this.#db.prepare(
      "SELECT token IS NULL AS done FROM dedupe_keys WHERE scope = ? AND key = ?",
    );
    this.#done = this.#db.prepare(
      `INSERT INTO dedupe_keys VALUES (?, ?, NULL, ?) ON CONFLICT (scope, key)
       DO UPDATE SET token = NULL, expires_at = excluded.expires_at`,
    );
  }
  claim(scope: string, key: string, leaseMs: number): Claim {
    const now = Date.now();
    const token = `t${++this.#n}`;
    if (this.#claim.get(scope, key, token, now + leaseMs, now)) return { status: "claimed", token };
    const row = this.#state.get(scope, key) as { done: number } | undefined;
    return row?.done === 1 ? { status: "done" } : { status: "busy" };
  }
  done(scope: string, key: string): void {
    this.#done.run(scope, key, Date.now() + TTL_MS);
  }
  release(): void {}
  renew(): void {}
  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

/**
 * The same contract on Deno KV: the deadline is kept in the value (an
 * expired KV key stays readable for a while), and a claim is a read then an
 * atomic write checked against the version read.
 */
class KvStore implements DedupeStore {
  readonly #kv: Deno.Kv;
  #n = 0;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }
  async claim(scope: string, key: string, leaseMs: number): Promise<Claim> {
    const id = ["dedupe", scope, key];
    for (;;) {
      const now = Date.now();
      const current = await this.#kv.get<{ token: string | null; until: number }>(id);
      if (current.value !== null && current.value.until > now) {
        return current.value.token === null ? { status: "done" } : { status: "busy" };
      }
      const token = `t${++this.#n}`;
      const result = await this.#kv.atomic().check(current)
        .set(id, { token, until: now + leaseMs }, { expireIn: leaseMs }).commit();
      if (result.ok) return { status: "claimed", token };
    }
  }
  async done(scope: string, key: string): Promise<void> {
    await this.#kv.set(["dedupe", scope, key], { token: null, until: Date.now() + TTL_MS }, {
      expireIn: TTL_MS,
    });
  }
  release(): void {}
  renew(): void {}
  close(): Promise<void> {
    this.#kv.close();
    return Promise.resolve();
  }
}

/** Claims and marks done `count` fresh keys, `inFlight` at a time; returns µs per message. */
async function run(store: DedupeStore, prefix: string, count: number, inFlight: number) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const key = `${prefix}-${next++}`;
      const claim = await store.claim(SCOPE, key, LEASE_MS);
      if (claim.status !== "claimed") throw new Error(`${key}: ${claim.status}`);
      await store.done(SCOPE, key, claim.token);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return ((performance.now() - started) * 1000) / count;
}

interface Candidate {
  readonly name: string;
  /** Fewer messages for the slow ones, so that a run stays short. */
  readonly scale: number;
  readonly open: (dir: string) => Promise<DedupeStore> | DedupeStore;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { messages: { type: "string", default: "20000" }, redis: { type: "string" } },
  });
  const messages = Number(values.messages);
  const candidates: Candidate[] = [
    { name: "memory", scale: 1, open: () => new MemoryStore({ capacity: 1e7, ttlMs: TTL_MS }) },
    {
      name: "sqlite (node:sqlite, group commit) ← used",
      scale: 1,
      open: (dir) => new SqliteStore({ path: `${dir}/group.db`, ttlMs: TTL_MS }),
    },
    {
      name: "sqlite (node:sqlite, a commit per call)",
      scale: 1,
      open: (dir) => new AutocommitSqlite(`${dir}/autocommit.db`),
    },
    {
      name: "Deno KV (--unstable-kv)",
      scale: 0.1,
      open: async (dir) => new KvStore(await Deno.openKv(`${dir}/kv.db`)),
    },
  ];
  if (values.redis) {
    const url = values.redis;
    candidates.push({
      name: "redis (@redis/client)",
      scale: 1,
      open: async () => {
        const store = new RedisStore({ url, ttlMs: TTL_MS, keyPrefix: `bench:${Date.now()}:` });
        await waitConnected(store);
        return store;
      },
    });
  }

  const dir = await Deno.makeTempDir({ prefix: "nsqworker_dedupe_bench_" });
  console.log(`claim + done of fresh keys, µs per message (messages/s); N = ${messages}`);
  console.log("| store | in flight 1 | in flight 50 |");
  console.log("| --- | ---: | ---: |");
  try {
    for (const candidate of candidates) {
      const count = Math.max(100, Math.round(messages * candidate.scale));
      const store = await candidate.open(dir);
      try {
        await run(store, "warmup", Math.min(count, 1000), 10);
        const one = await run(store, "one", count, 1);
        const fifty = await run(store, "fifty", count, 50);
        console.log(`| ${candidate.name} | ${cell(one)} | ${cell(fifty)} |`);
      } finally {
        await store.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function cell(us: number): string {
  return `${us.toFixed(1)} (${Math.round(1e6 / us).toLocaleString("en-US")}/s)`;
}

async function waitConnected(store: RedisStore): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!store.connected) {
    if (performance.now() > deadline) throw new Error(`redis ${store.where} is unreachable`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
