/**
 * The in-process dedupe store (`dedupe.store: memory`).
 *
 * @module
 */

import { KeyTable } from "./key_table.ts";
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

/** A scope by number, with how many keys it holds (to drop it once empty). */
interface Scope {
  readonly name: string;
  readonly id: number;
  keys: number;
}

/**
 * Expired keys dropped per insert: more than one, so that expired keys
 * drain faster than new ones arrive, and few, so that an insert stays O(1).
 */
const PURGE_STEP = 2;

/** The sentinel slots of the two lists: done keys by use, claims by claim time. */
const DONE_LIST = 0;
const CLAIM_LIST = 1;
const FIRST_SLOT = 2;
const INITIAL_SLOTS = 64;

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
   * (scope, key) to its slot. A key is in the table whether claimed or done,
   * so that a message costs one insert and one lookup; scopes by number
   * rather than joined strings, which would be built and hashed on every
   * call.
   */
  readonly #table = new KeyTable();
  readonly #scopes = new Map<string, Scope>();
  #lastScopeId = 0;
  /** The scope of the latest call: one connection's messages come in runs. */
  #lastScope: Scope | undefined;
  /**
   * The state of a key lives in slots, column by column, so that an insert
   * or a move allocates nothing: its scope (to drop it once empty), its
   * token (null once done), when it lapses, and its neighbours in its list.
   */
  #owners: (Scope | undefined)[] = [];
  #tokens: (string | null)[] = [];
  #expires = new Float64Array(INITIAL_SLOTS);
  /**
   * Two circular lists through the slots, with sentinels: done keys from
   * the least recently used (`#next[DONE_LIST]`) to the most, and claims
   * from the oldest. A list of our own rather than a Map's order: evicting
   * from a Map's front makes V8 walk over every deleted slot before it.
   */
  #prev = new Int32Array(INITIAL_SLOTS);
  #next = new Int32Array(INITIAL_SLOTS);
  /** Free slots, chained through `#next`; -1 ends the chain. */
  #free = -1;
  #used = FIRST_SLOT;
  #doneCount = 0;
  #claimCount = 0;
  #lastToken = 0;
  /** Whether the latest {@linkcode #slotFor} made a new slot. */
  #fresh = false;
  /** Counts the table's changes, to know whether {@linkcode check}'s lookup still holds. */
  #version = 0;
  /**
   * The latest {@linkcode check}'s lookup (its slot, or -1 with the hash to
   * enter it), so that the {@linkcode markDone} that follows looks nothing
   * up again.
   */
  #checkedScope: Scope | undefined;
  #checkedKey = "";
  #checkedHash = 0;
  #checkedSlot = -1;
  #checkedVersion = -1;

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
    this.#reset();
  }

  /** The number of keys remembered as done (at most `capacity`). */
  get size(): number {
    return this.#doneCount;
  }

  /** Claims `key` in `scope` for `leaseMs`, unless it is done or claimed by a live lease. */
  claim(scope: string, key: string, leaseMs: number): Claim {
    const now = this.#now();
    if (this.#claimCount >= this.#capacity) this.#purgeClaims(now);
    const slot = this.#slotFor(scope, key);
    if (!this.#fresh) {
      if (this.#expires[slot]! > now) {
        if (this.#tokens[slot] !== null) return BUSY;
        // A hit counts as a use for the LRU order; it does not extend the ttl.
        this.#unlink(slot);
        this.#append(DONE_LIST, slot);
        return DONE;
      }
      // A lapsed claim or an expired done key: the slot is claimed afresh.
      this.#detach(slot);
    }
    // Base 36, not String(n): with a claim that did nothing else, a decimal token per message
    // (V8's number-to-string cache missing every time) cost the daemon about 0.9 µs of CPU a
    // message in `deno task bench`; base 36 cost nothing measurable.
    const token = (++this.#lastToken).toString(36);
    this.#tokens[slot] = token;
    this.#expires[slot] = now + leaseMs;
    this.#append(CLAIM_LIST, slot);
    this.#claimCount++;
    return { status: "claimed", token };
  }

  /**
   * Marks `key` done for the ttl. Any claim on it ends, whoever holds it: a
   * stale token still marks the key done, as the work did happen, and the
   * newer holder then finds it done too.
   */
  done(scope: string, key: string, _token: string): void {
    const slot = this.#slotFor(scope, key);
    this.#markSlotDone(slot, this.#fresh);
  }

  /** The state of `key` now: `"free"` (never seen, expired or lapsed), `"done"` or `"busy"`. */
  check(scope: string, key: string): "free" | "done" | "busy" {
    const owner = this.#lastScope?.name === scope ? this.#lastScope : this.#scopes.get(scope);
    // An unknown scope is not created here: a key that is never marked would leave it behind.
    this.#checkedScope = owner;
    this.#checkedKey = key;
    this.#checkedVersion = this.#version;
    if (owner === undefined) {
      this.#checkedSlot = -1;
      return "free";
    }
    const hash = this.#table.hash(owner.id, key);
    const slot = this.#table.find(owner.id, key, hash);
    this.#checkedHash = hash;
    this.#checkedSlot = slot;
    if (slot === -1 || !(this.#expires[slot]! > this.#now())) return "free";
    if (this.#tokens[slot] !== null) return "busy";
    // A hit counts as a use for the LRU order, as in claim().
    this.#unlink(slot);
    this.#append(DONE_LIST, slot);
    return "done";
  }

  /** Marks `key` done, as {@linkcode done} does; after its {@linkcode check}, without a lookup. */
  markDone(scope: string, key: string): void {
    let slot: number;
    let fresh: boolean;
    const owner = this.#checkedScope;
    if (
      this.#checkedVersion === this.#version && this.#checkedKey === key &&
      owner !== undefined && owner.name === scope
    ) {
      slot = this.#checkedSlot;
      fresh = slot === -1;
      if (fresh) slot = this.#take(owner, key, this.#checkedHash);
    } else {
      slot = this.#slotFor(scope, key);
      fresh = this.#fresh;
    }
    this.#checkedVersion = -1;
    this.#markSlotDone(slot, fresh);
  }

  /** `slot` (`fresh`: in no list yet) becomes a done key, the most recently used. */
  #markSlotDone(slot: number, fresh: boolean): void {
    const now = this.#now();
    if (!fresh) this.#detach(slot);
    this.#tokens[slot] = null;
    this.#expires[slot] = now + this.#ttlMs;
    this.#append(DONE_LIST, slot);
    this.#doneCount++;
    this.#evict(now);
  }

  /** Drops the claim on `key` if `token` still owns it. */
  release(scope: string, key: string, token: string): void {
    const slot = this.#find(scope, key);
    if (slot !== -1 && this.#tokens[slot] === token) this.#forget(slot);
  }

  /**
   * Extends the claim on `key` to `leaseMs` from now if `token` still owns it.
   * A lapsed lease that nobody has claimed since is still owned, so it is
   * extended too.
   */
  renew(scope: string, key: string, token: string, leaseMs: number): void {
    const slot = this.#find(scope, key);
    if (slot === -1 || this.#tokens[slot] !== token) return;
    this.#expires[slot] = this.#now() + leaseMs;
    // Claims stay in the order they lapse (mostly), so a purge stops early.
    this.#unlink(slot);
    this.#append(CLAIM_LIST, slot);
  }

  /** Forgets every key. */
  close(): Promise<void> {
    this.#reset();
    return Promise.resolve();
  }

  #reset(): void {
    this.#table.clear();
    this.#version++;
    this.#scopes.clear();
    this.#lastScope = undefined;
    this.#owners = [];
    this.#tokens = [];
    this.#expires = new Float64Array(INITIAL_SLOTS);
    this.#prev = new Int32Array(INITIAL_SLOTS);
    this.#next = new Int32Array(INITIAL_SLOTS);
    for (const list of [DONE_LIST, CLAIM_LIST]) {
      this.#prev[list] = list;
      this.#next[list] = list;
    }
    this.#free = -1;
    this.#used = FIRST_SLOT;
    this.#doneCount = 0;
    this.#claimCount = 0;
  }

  #scope(name: string): Scope {
    const last = this.#lastScope;
    if (last !== undefined && last.name === name) return last;
    let scope = this.#scopes.get(name);
    if (scope === undefined) {
      scope = { name, id: ++this.#lastScopeId, keys: 0 };
      this.#scopes.set(name, scope);
    }
    this.#lastScope = scope;
    return scope;
  }

  /** The slot of `key` in `scope`, or -1. */
  #find(scope: string, key: string): number {
    const last = this.#lastScope;
    const owner = last !== undefined && last.name === scope ? last : this.#scopes.get(scope);
    if (owner === undefined) return -1;
    return this.#table.find(owner.id, key, this.#table.hash(owner.id, key));
  }

  /**
   * The slot of `key` in `scope`, or a new one entered in the table but in
   * no list yet (then `#fresh` is true).
   */
  #slotFor(scope: string, key: string): number {
    const owner = this.#scope(scope);
    const hash = this.#table.hash(owner.id, key);
    const slot = this.#table.find(owner.id, key, hash);
    this.#fresh = slot === -1;
    return this.#fresh ? this.#take(owner, key, hash) : slot;
  }

  /** A free slot for `key`, entered in the table but in no list yet. */
  #take(owner: Scope, key: string, hash: number): number {
    let slot = this.#free;
    if (slot !== -1) {
      this.#free = this.#next[slot]!;
    } else {
      if (this.#used === this.#expires.length) this.#grow();
      slot = this.#used++;
    }
    this.#owners[slot] = owner;
    owner.keys++;
    this.#table.add(slot, owner.id, key, hash);
    this.#version++;
    return slot;
  }

  #grow(): void {
    const size = this.#expires.length * 2;
    const expires = new Float64Array(size);
    const prev = new Int32Array(size);
    const next = new Int32Array(size);
    expires.set(this.#expires);
    prev.set(this.#prev);
    next.set(this.#next);
    this.#expires = expires;
    this.#prev = prev;
    this.#next = next;
  }

  /** Forgets the key in `slot`, claimed or done, and frees the slot. */
  #forget(slot: number): void {
    this.#detach(slot);
    this.#table.remove(slot);
    this.#version++;
    const owner = this.#owners[slot]!;
    // Scopes come and go with connections; an empty one is dropped.
    if (--owner.keys === 0) {
      this.#scopes.delete(owner.name);
      if (this.#lastScope === owner) this.#lastScope = undefined;
    }
    this.#owners[slot] = undefined;
    this.#tokens[slot] = null;
    this.#next[slot] = this.#free;
    this.#free = slot;
  }

  /** Takes `slot` out of its list and its count, to be reused or freed. */
  #detach(slot: number): void {
    this.#unlink(slot);
    if (this.#tokens[slot] === null) this.#doneCount--;
    else this.#claimCount--;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    this.#next[prev] = next;
    this.#prev[next] = prev;
  }

  /** Puts `slot` at the end of `list`: the most recently used done key, or the newest claim. */
  #append(list: number, slot: number): void {
    const last = this.#prev[list]!;
    this.#next[last] = slot;
    this.#prev[slot] = last;
    this.#next[slot] = list;
    this.#prev[list] = slot;
  }

  /**
   * Forgets the least recently used keys beyond `capacity`, and a few
   * expired ones from the same end; O(1) amortized.
   */
  #evict(now: number): void {
    let expired = 0;
    for (;;) {
      const slot = this.#next[DONE_LIST]!;
      if (slot === DONE_LIST) return;
      const over = this.#doneCount > this.#capacity;
      if (!over && (this.#expires[slot]! > now || ++expired > PURGE_STEP)) return;
      this.#forget(slot);
    }
  }

  /** Drops lapsed claims, oldest first, a bounded number per call. */
  #purgeClaims(now: number): void {
    for (let dropped = 0; dropped < PURGE_STEP; dropped++) {
      const slot = this.#next[CLAIM_LIST]!;
      if (slot === CLAIM_LIST || this.#expires[slot]! > now) return;
      this.#forget(slot);
    }
  }
}
