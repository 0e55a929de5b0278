/**
 * The cost of claim + done in the memory dedupe store when it is full, and
 * the measurement behind its implementation: the store as built (one map per
 * scope from key to a slot, LRU and claims as lists through typed arrays)
 * against `lru-cache` from npm and against two generations of Maps.
 *
 * Usage:
 *
 *   deno run bench/memory_store.ts [--messages N] [--capacity N] [--scopes N]
 *
 * Each candidate is filled to `capacity` done keys, then handles N fresh
 * message ids (claim, then done, as the task runner does for a handler that
 * succeeds), so every done evicts one key. A store's cost is its figure
 * less that of "no store", the loop alone. `--scopes` spreads the messages
 * over that many scopes in turn, as when the default key is scoped per nsqd.
 *
 * @module
 */

import { LRUCache } from "npm:lru-cache@11.5.3";
import { parseArgs } from "node:util";
import { MemoryStore } from "../src/dedupe/memory_store.ts";
import type { Claim, DedupeStore } from "../src/dedupe/store.ts";

const LEASE_MS = 70_000;
const TTL_MS = 86_400_000;
const DONE: Claim = { status: "done" };
const BUSY: Claim = { status: "busy" };

/** Claims by one joined id, for the candidates that key everything so. */
class Claims {
  readonly #leases = new Map<string, { token: string; expiresAt: number }>();
  #lastToken = 0;

  claim(id: string, leaseMs: number, now: number): Claim {
    const lease = this.#leases.get(id);
    if (lease !== undefined && lease.expiresAt > now) return BUSY;
    const token = String(++this.#lastToken);
    this.#leases.set(id, { token, expiresAt: now + leaseMs });
    return { status: "claimed", token };
  }

  release(id: string, token: string): void {
    if (this.#leases.get(id)?.token === token) this.#leases.delete(id);
  }
}

/** An id that no two (scope, key) pairs share. */
function joined(scope: string, key: string): string {
  return scope.length + ":" + scope + key;
}

/** Done keys in an `lru-cache` (its own LRU list and ttl), claims in a Map. */
class LruCacheStore implements DedupeStore {
  readonly #done: LRUCache<string, true>;
  readonly #claims = new Claims();

  constructor(capacity: number, ttlMs: number) {
    this.#done = new LRUCache({ max: capacity, ttl: ttlMs, updateAgeOnGet: false });
  }
  claim(scope: string, key: string, leaseMs: number): Claim {
    const id = joined(scope, key);
    if (this.#done.get(id) !== undefined) return DONE;
    return this.#claims.claim(id, leaseMs, Date.now());
  }
  done(scope: string, key: string, token: string): void {
    const id = joined(scope, key);
    this.#claims.release(id, token);
    this.#done.set(id, true);
  }
  release(scope: string, key: string, token: string): void {
    this.#claims.release(joined(scope, key), token);
  }
  renew(): void {}
  close(): Promise<void> {
    this.#done.clear();
    return Promise.resolve();
  }
}

/**
 * Done keys in two Maps of at most capacity / 2 each: new keys go to the
 * young one, a hit in the old one moves there, and when the young one is
 * full it becomes the old one (the old one is dropped whole). Approximate
 * LRU, and the store holds between capacity / 2 and capacity keys.
 */
class GenerationsStore implements DedupeStore {
  readonly #half: number;
  readonly #ttlMs: number;
  #young = new Map<string, number>();
  #old = new Map<string, number>();
  readonly #claims = new Claims();

  constructor(capacity: number, ttlMs: number) {
    this.#half = Math.max(1, Math.floor(capacity / 2));
    this.#ttlMs = ttlMs;
  }
  claim(scope: string, key: string, leaseMs: number): Claim {
    const id = joined(scope, key);
    const now = Date.now();
    let expiresAt = this.#young.get(id);
    if (expiresAt === undefined) {
      expiresAt = this.#old.get(id);
      if (expiresAt !== undefined && expiresAt > now) {
        this.#old.delete(id);
        this.#insert(id, expiresAt);
      }
    }
    if (expiresAt !== undefined && expiresAt > now) return DONE;
    return this.#claims.claim(id, leaseMs, now);
  }
  done(scope: string, key: string, token: string): void {
    const id = joined(scope, key);
    this.#claims.release(id, token);
    this.#insert(id, Date.now() + this.#ttlMs);
  }
  #insert(id: string, expiresAt: number): void {
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(id, expiresAt);
  }
  release(scope: string, key: string, token: string): void {
    this.#claims.release(joined(scope, key), token);
  }
  renew(): void {}
  close(): Promise<void> {
    this.#young.clear();
    this.#old.clear();
    return Promise.resolve();
  }
}

/**
 * A message-id-like key (16 hex digits), made as each message is handled:
 * a fresh string that dies young unless the store keeps it, as the daemon's
 * ids do, so that the garbage collector's share of keeping it is counted.
 */
function messageId(n: number): string {
  return n.toString(16).padStart(16, "0");
}

/** Scope names as a consumer would build them, once per connection. */
function scopeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `bench_topic/bench_channel@127.0.0.1:${4150 + i}`);
}

/**
 * Claims then marks done `count` ids from `start`; the scope turns every 32
 * messages, like a read per connection.
 */
function drive(store: DedupeStore, scopes: string[], start: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const scope = scopes[(i >>> 5) % scopes.length]!;
    const key = messageId(start + i);
    const claim = store.claim(scope, key, LEASE_MS) as Claim;
    if (claim.status !== "claimed") throw new Error(`${key}: ${claim.status}, expected claimed`);
    store.done(scope, key, claim.token);
  }
}

/** The factories of the candidates, by name. */
export type Candidates = Record<string, (capacity: number, ttlMs: number) => DedupeStore>;

/** Nanoseconds per claim + done of a fresh key in a full store: the best of `rounds`. */
export function measure(
  open: (capacity: number, ttlMs: number) => DedupeStore,
  options: { capacity: number; messages: number; scopes: number; rounds: number },
): number {
  const store = open(options.capacity, TTL_MS);
  const scopes = scopeNames(options.scopes);
  let next = 0;
  drive(store, scopes, next, options.capacity);
  next += options.capacity;
  let best = Infinity;
  for (let round = 0; round < options.rounds; round++) {
    const started = performance.now();
    drive(store, scopes, next, options.messages);
    next += options.messages;
    best = Math.min(best, ((performance.now() - started) * 1e6) / options.messages);
  }
  return best;
}

/** What the loop itself costs (making ids, a claim answer and a token each): subtract it. */
class NoStore implements DedupeStore {
  #lastToken = 0;

  claim(): Claim {
    return { status: "claimed", token: String(++this.#lastToken) };
  }
  done(): void {}
  release(): void {}
  renew(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The memory store as the task runner uses it for a synchronous handler:
 * `check`, then `markDone`, with no claim (the loop's claim answer aside).
 */
class CheckedMemoryStore extends NoStore {
  readonly #store: MemoryStore;

  constructor(capacity: number, ttlMs: number) {
    super();
    this.#store = new MemoryStore({ capacity, ttlMs });
  }
  override claim(scope?: string, key?: string): Claim {
    const status = this.#store.check(scope!, key!);
    return status === "free" ? super.claim() : status === "done" ? DONE : BUSY;
  }
  override done(scope?: string, key?: string): void {
    this.#store.markDone(scope!, key!);
  }
}

/** The candidates this file measures. */
export const CANDIDATES: Candidates = {
  "no store (the loop alone)": () => new NoStore(),
  "MemoryStore (slots) ← used": (capacity, ttlMs) => new MemoryStore({ capacity, ttlMs }),
  "MemoryStore check + markDone (a synchronous handler) ← used": (capacity, ttlMs) =>
    new CheckedMemoryStore(capacity, ttlMs),
  "lru-cache 11.5.3": (capacity, ttlMs) => new LruCacheStore(capacity, ttlMs),
  "two generations of Maps": (capacity, ttlMs) => new GenerationsStore(capacity, ttlMs),
};

/** Prints a table of every candidate, for the options given on the command line. */
export function main(candidates: Candidates, args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: "string", default: "1000000" },
      capacity: { type: "string", default: "100000" },
      scopes: { type: "string", default: "1" },
      rounds: { type: "string", default: "3" },
    },
  });
  const options = {
    messages: Number(values.messages),
    capacity: Number(values.capacity),
    scopes: Number(values.scopes),
    rounds: Number(values.rounds),
  };
  console.log(
    `claim + done of a fresh key, full store (capacity ${options.capacity}), ` +
      `${options.scopes} scope(s), best of ${options.rounds} × ${options.messages}`,
  );
  console.log("| store | ns per message |");
  console.log("| --- | ---: |");
  for (const [name, open] of Object.entries(candidates)) {
    console.log(`| ${name} | ${measure(open, options).toFixed(0)} |`);
  }
}

if (import.meta.main) main(CANDIDATES, Deno.args);
