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
  /**
   * The clock, in milliseconds (default: `Date.now`, a builtin, where
   * `performance.now()` is a call into the runtime on every message; a step
   * of the wall clock only moves leases and expiries with it).
   */
  readonly now?: () => number;
}

interface Lease {
  token: string;
  expiresAt: number;
}

interface Done {
  readonly key: string;
  /** The scope's map that holds it. */
  readonly scope: Map<string, Done>;
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
  /**
   * Done keys by scope, then key. Maps per scope rather than one map of
   * joined strings: a key string is hashed once and the hash kept with it,
   * where a joined string would be built and hashed on every call.
   */
  readonly #done = new Map<string, Map<string, Done>>();
  #doneCount = 0;
  /**
   * Done keys in order of use, least recent first, with stale places (a key
   * used again, or forgotten) skipped when reached. A queue of our own rather
   * than a Map's order: evicting from a Map's front makes V8 walk over every
   * deleted slot before it, which grows with each eviction until the next
   * rehash (at 100 k keys, hundreds of microseconds a message).
   */
  #uses: Done[] = [];
  #useSeqs: number[] = [];
  #head = 0;
  #nextUse = 0;
  /**
   * Claimed keys by scope, then key. The runner always releases or completes
   * its claims, so these hold about the messages in flight; lapsed leases are
   * purged only once they reach `capacity`, to keep them bounded.
   */
  readonly #claims = new Map<string, Map<string, Lease>>();
  #claimCount = 0;
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
    this.#now = options.now ?? Date.now;
  }

  /** The number of keys remembered as done (at most `capacity`). */
  get size(): number {
    return this.#doneCount;
  }

  /** Claims `key` in `scope` for `leaseMs`, unless it is done or claimed by a live lease. */
  claim(scope: string, key: string, leaseMs: number): Claim {
    const now = this.#now();
    const doneScope = this.#done.get(scope);
    const done = doneScope?.get(key);
    if (done !== undefined) {
      if (done.expiresAt > now) {
        // A hit counts as a use for the LRU order; it does not extend the ttl.
        this.#use(done);
        return DONE;
      }
      this.#forget(done);
    }
    let claims = this.#claims.get(scope);
    if (claims === undefined) {
      claims = new Map();
      this.#claims.set(scope, claims);
    }
    const lease = claims.get(key);
    if (lease !== undefined) {
      if (lease.expiresAt > now) return BUSY;
      claims.delete(key);
      this.#claimCount--;
    }
    if (this.#claimCount >= this.#capacity) this.#purgeClaims(now);
    const token = String(++this.#lastToken);
    claims.set(key, { token, expiresAt: now + leaseMs });
    this.#claimCount++;
    return { status: "claimed", token };
  }

  /** Marks `key` done for the ttl, dropping the claim if `token` still owns it. */
  done(scope: string, key: string, token: string): void {
    this.release(scope, key, token);
    const now = this.#now();
    let doneScope = this.#done.get(scope);
    if (doneScope === undefined) {
      doneScope = new Map();
      this.#done.set(scope, doneScope);
    }
    let done = doneScope.get(key);
    if (done === undefined) {
      done = { key, scope: doneScope, expiresAt: now + this.#ttlMs, use: 0 };
      doneScope.set(key, done);
      this.#doneCount++;
    } else {
      done.expiresAt = now + this.#ttlMs;
    }
    this.#use(done);
    this.#evict(now);
  }

  /** Drops the claim on `key` if `token` still owns it. */
  release(scope: string, key: string, token: string): void {
    const claims = this.#claims.get(scope);
    if (claims?.get(key)?.token === token) {
      claims.delete(key);
      this.#claimCount--;
    }
  }

  /**
   * Extends the claim on `key` to `leaseMs` from now if `token` still owns it.
   * A lapsed lease that nobody has claimed since is still owned, so it is
   * extended too.
   */
  renew(scope: string, key: string, token: string, leaseMs: number): void {
    const lease = this.#claims.get(scope)?.get(key);
    if (lease?.token === token) lease.expiresAt = this.#now() + leaseMs;
  }

  /** Forgets every key. */
  close(): Promise<void> {
    this.#done.clear();
    this.#claims.clear();
    this.#doneCount = 0;
    this.#claimCount = 0;
    this.#uses = [];
    this.#useSeqs = [];
    this.#head = 0;
    return Promise.resolve();
  }

  #forget(done: Done): void {
    if (done.scope.get(done.key) === done) {
      done.scope.delete(done.key);
      this.#doneCount--;
    }
  }

  #use(done: Done): void {
    done.use = this.#nextUse++;
    this.#uses.push(done);
    this.#useSeqs.push(done.use);
    // Keys used over and over leave stale places behind; keep the queue
    // within a small multiple of the keys it orders.
    if (this.#uses.length - this.#head > 2 * this.#doneCount + 1024) this.#compact();
  }

  #live(i: number): boolean {
    const done = this.#uses[i]!;
    return done.use === this.#useSeqs[i] && done.scope.get(done.key) === done;
  }

  #compact(): void {
    const uses: Done[] = [];
    const seqs: number[] = [];
    for (let i = this.#head; i < this.#uses.length; i++) {
      if (this.#live(i)) {
        uses.push(this.#uses[i]!);
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
      if (this.#live(this.#head)) {
        const done = this.#uses[this.#head]!;
        const over = this.#doneCount > this.#capacity;
        if (!over && (done.expiresAt > now || ++expired > PURGE_STEP)) break;
        this.#forget(done);
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

  /** Drops lapsed claims, oldest first in each scope, a bounded number per call. */
  #purgeClaims(now: number): void {
    let dropped = 0;
    for (const claims of this.#claims.values()) {
      for (const [key, lease] of claims) {
        if (lease.expiresAt > now || dropped >= PURGE_STEP) break;
        claims.delete(key);
        this.#claimCount--;
        dropped++;
      }
    }
  }
}
