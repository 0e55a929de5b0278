/**
 * The in-process dedupe store (`dedupe.store: memory`).
 *
 * @module
 */

import type { Claim, DedupeStore } from "./store.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /** The most done keys remembered; beyond it the least recently used is forgotten. */
  readonly capacity: number;
  /** How long a done key is remembered, in milliseconds. */
  readonly ttlMs: number;
  /** The clock, in milliseconds (default: `performance.now()`, which never jumps). */
  readonly now?: () => number;
}

interface Lease {
  token: string;
  expiresAt: number;
}

interface Done {
  expiresAt: number;
  /** The place of its latest use in the use queue; older places are stale. */
  use: number;
}

/**
 * Expired keys dropped per insert: more than one, so that expired keys
 * drain faster than new ones arrive, and few, so that an insert stays O(1).
 */
const PURGE_STEP = 2;

const DONE: Claim = Object.freeze({ status: "done" });
const BUSY: Claim = Object.freeze({ status: "busy" });

function monotonicNow(): number {
  return performance.now();
}

/**
 * A {@linkcode DedupeStore} held in this process's memory: one per process,
 * shared by every entry. It is bounded by `capacity` done keys (least
 * recently used first out); a done key expires after `ttlMs` and a claim
 * after its lease. Its methods are synchronous, as it sits on the path of
 * every message.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 *
 * const store = new MemoryStore({ capacity: 100_000, ttlMs: 24 * 3_600_000 });
 * const claim = store.claim("pageviews/counter", "event-1", 70_000);
 * if (claim.status === "claimed") store.done("pageviews/counter", "event-1", claim.token);
 * store.claim("pageviews/counter", "event-1", 70_000); // { status: "done" }
 * ```
 */
export class MemoryStore implements DedupeStore {
  readonly #capacity: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** Done keys → when they expire and their latest use. */
  readonly #done = new Map<string, Done>();
  /**
   * Done keys in order of use, least recent first, with stale places (a key
   * used again, or forgotten) skipped when reached. A queue of our own rather
   * than the Map's order: evicting from a Map's front makes V8 walk over every
   * deleted slot before it, which grows with each eviction until the next
   * rehash (at 100 k keys, hundreds of microseconds a message).
   */
  #uses: string[] = [];
  #useSeqs: number[] = [];
  #head = 0;
  #nextUse = 0;
  /**
   * Claimed keys → their lease, oldest claim first. The runner always releases
   * or completes its claims, so this holds about the messages in flight; lapsed
   * leases are purged only once it reaches `capacity`, to keep it bounded.
   */
  readonly #claims = new Map<string, Lease>();
  #lastToken = 0;

  /** Creates an empty store; throws a `RangeError` on a bad `capacity` or `ttlMs`. */
  constructor(options: MemoryStoreOptions) {
    const { capacity, ttlMs } = options;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(
        `Cannot create a memory store as 'capacity' must be a positive integer: current value is ${capacity}`,
      );
    }
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new RangeError(
        `Cannot create a memory store as 'ttlMs' must be a positive number: current value is ${ttlMs}`,
      );
    }
    this.#capacity = capacity;
    this.#ttlMs = ttlMs;
    this.#now = options.now ?? monotonicNow;
  }

  /** The number of keys remembered as done (at most `capacity`). */
  get size(): number {
    return this.#done.size;
  }

  /** Claims `key` in `scope` for `leaseMs`, unless it is done or claimed by a live lease. */
  claim(scope: string, key: string, leaseMs: number): Claim {
    const id = storeKey(scope, key);
    const now = this.#now();
    const done = this.#done.get(id);
    if (done !== undefined) {
      if (done.expiresAt > now) {
        // A hit counts as a use for the LRU order; it does not extend the ttl.
        this.#use(id, done);
        return DONE;
      }
      this.#done.delete(id);
    }
    const lease = this.#claims.get(id);
    if (lease !== undefined) {
      if (lease.expiresAt > now) return BUSY;
      this.#claims.delete(id);
    }
    if (this.#claims.size >= this.#capacity) purgeClaims(this.#claims, now);
    const token = String(++this.#lastToken);
    this.#claims.set(id, { token, expiresAt: now + leaseMs });
    return { status: "claimed", token };
  }

  /** Marks `key` done for the ttl, dropping the claim if `token` still owns it. */
  done(scope: string, key: string, token: string): void {
    const id = storeKey(scope, key);
    if (this.#claims.get(id)?.token === token) this.#claims.delete(id);
    const now = this.#now();
    let done = this.#done.get(id);
    if (done === undefined) {
      done = { expiresAt: now + this.#ttlMs, use: 0 };
      this.#done.set(id, done);
    } else {
      done.expiresAt = now + this.#ttlMs;
    }
    this.#use(id, done);
    this.#evict(now);
  }

  #use(id: string, done: Done): void {
    done.use = this.#nextUse++;
    this.#uses.push(id);
    this.#useSeqs.push(done.use);
    // Keys used over and over leave stale places behind; keep the queue
    // within a small multiple of the keys it orders.
    if (this.#uses.length - this.#head > 2 * this.#done.size + 1024) this.#compact();
  }

  #compact(): void {
    const uses: string[] = [];
    const seqs: number[] = [];
    for (let i = this.#head; i < this.#uses.length; i++) {
      const id = this.#uses[i]!;
      if (this.#done.get(id)?.use === this.#useSeqs[i]) {
        uses.push(id);
        seqs.push(this.#useSeqs[i]!);
      }
    }
    this.#uses = uses;
    this.#useSeqs = seqs;
    this.#head = 0;
  }

  /**
   * Forgets the least recently used keys beyond `capacity`, and a few
   * expired ones from the same end; O(1) amortized.
   */
  #evict(now: number): void {
    let expired = 0;
    while (this.#head < this.#uses.length) {
      const id = this.#uses[this.#head]!;
      const done = this.#done.get(id);
      if (done !== undefined && done.use === this.#useSeqs[this.#head]) {
        const over = this.#done.size > this.#capacity;
        if (!over && (done.expiresAt > now || ++expired > PURGE_STEP)) break;
        this.#done.delete(id);
      }
      this.#head++;
    }
    // Drop the consumed front once it is the larger part.
    if (this.#head > 1024 && this.#head * 2 > this.#uses.length) {
      this.#uses = this.#uses.slice(this.#head);
      this.#useSeqs = this.#useSeqs.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Drops the claim on `key` if `token` still owns it. */
  release(scope: string, key: string, token: string): void {
    const id = storeKey(scope, key);
    if (this.#claims.get(id)?.token === token) this.#claims.delete(id);
  }

  /**
   * Extends the claim on `key` to `leaseMs` from now if `token` still owns it.
   * A lapsed lease that nobody has claimed since is still owned, so it is
   * extended too.
   */
  renew(scope: string, key: string, token: string, leaseMs: number): void {
    const lease = this.#claims.get(storeKey(scope, key));
    if (lease?.token === token) lease.expiresAt = this.#now() + leaseMs;
  }

  /** Forgets every key. */
  close(): Promise<void> {
    this.#done.clear();
    this.#claims.clear();
    this.#uses = [];
    this.#useSeqs = [];
    this.#head = 0;
    return Promise.resolve();
  }
}

/** Drops lapsed claims from the oldest end, a bounded number per call. */
function purgeClaims(claims: Map<string, Lease>, now: number): void {
  let dropped = 0;
  for (const [id, lease] of claims) {
    if (lease.expiresAt > now || ++dropped > PURGE_STEP) return;
    claims.delete(id);
  }
}

/** Topic and channel names never contain NUL, so it separates the scope from any key. */
function storeKey(scope: string, key: string): string {
  return scope + "\0" + key;
}
