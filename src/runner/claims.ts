/**
 * The dedupe store's side of the runner's attempts: a key claimed (or, in a
 * process-local store, only checked), its claim renewed while the handler
 * runs, then the key marked done or the claim released. Past the claim every
 * call is a best effort: a lost done mark only lets a later duplicate run
 * again, and a claim that is not released lapses with its lease.
 *
 * @module
 */

import type { Claim, DedupeStore } from "../dedupe/store.ts";
import type { Lease } from "./deadline.ts";
import type { Outcome } from "./outcome.ts";

/**
 * How much longer than the time between renewals a claim lasts: room for a
 * late timer and a slow store round trip. It stays short because it is also
 * how long a claim left by a crashed process keeps other hosts busy.
 */
export const LEASE_MARGIN_MS = 10_000;

/** What {@linkcode Claims} reads and writes of an attempt: its key and where its claim stands. */
export interface KeyClaim {
  readonly scope: string;
  /** Null when the message has no dedupe. */
  readonly key: string | null;
  /** Null when there is no claim to renew, release or complete (no dedupe, or the claim failed). */
  token: string | null;
  /** The key was checked, not claimed, in a process-local store (see `DedupeStore.check`). */
  checked: boolean;
  /** How long a claim lasts, and each renewal extends it. */
  readonly leaseMs: number;
}

/** A store with {@linkcode DedupeStore.check} and {@linkcode DedupeStore.markDone}. */
type LocalStore = DedupeStore & Required<Pick<DedupeStore, "check" | "markDone">>;

/**
 * One runner's claims in its dedupe store. Every method takes an attempt
 * with a key, except {@linkcode Claims.done} and {@linkcode Claims.release},
 * which do nothing for an attempt without one.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "../dedupe/memory_store.ts";
 * import { Claims, type KeyClaim } from "./claims.ts";
 *
 * const attempt: KeyClaim = { scope: "counter", key: "k1", token: null, checked: false, leaseMs: 70_000 };
 *
 * const claims = new Claims(new MemoryStore({ capacity: 100, ttlMs: 60_000 }), false);
 * if (claims.check(attempt) === "free") {
 *   attempt.checked = true;
 *   // … run the handler, then:
 *   claims.done(attempt, { kind: "finish", durationMs: 1 });
 * }
 * ```
 */
export class Claims {
  readonly #store: DedupeStore;
  /** The store, when it is process-local and can be checked rather than claimed. */
  readonly #local: LocalStore | null;

  /** `joins`: the runner's attempts join a batch rather than run at once. */
  constructor(store: DedupeStore, joins: boolean) {
    this.#store = store;
    const { check, markDone } = store;
    // A message joining a batch is handled later, so it must hold a claim
    // meanwhile: only a handler run in the same turn can go without one.
    this.#local = check !== undefined && markDone !== undefined && !joins
      ? store as LocalStore
      : null;
  }

  /**
   * Where the attempt's key stands in a process-local store, where nothing
   * else can claim it in the same synchronous run; null when the store has
   * to be claimed instead.
   */
  check(attempt: KeyClaim): "free" | "done" | "busy" | null {
    return this.#local === null ? null : this.#local.check(attempt.scope, attempt.key!);
  }

  /** Claims the attempt's key for its lease; throws or rejects when the store fails. */
  claim(attempt: KeyClaim): Claim | Promise<Claim> {
    return this.#store.claim(attempt.scope, attempt.key!, attempt.leaseMs);
  }

  /** A checked key's handler returned a promise: claimed now, in the run that checked it. */
  claimLate(attempt: KeyClaim): void {
    attempt.checked = false;
    try {
      // A process-local store answers at once, and nothing ran since the check to claim the key.
      const claim = this.#store.claim(attempt.scope, attempt.key!, attempt.leaseMs) as Claim;
      if (claim.status === "claimed") attempt.token = claim.token;
    } catch {
      // Then the handler runs unclaimed, as with a failed claim; done still marks the key.
    }
  }

  /** The claim a running handler renews at each touch; null when the attempt holds none. */
  lease(attempt: KeyClaim): Lease | null {
    const { key, token } = attempt;
    return key !== null && token !== null
      ? { store: this.#store, scope: attempt.scope, key, token, leaseMs: attempt.leaseMs }
      : null;
  }

  /** The handler returned: marks the attempt's key done, if it has one, then gives `outcome`. */
  done(attempt: KeyClaim, outcome: Outcome): Outcome | Promise<Outcome> {
    if (attempt.key === null) return outcome;
    if (attempt.checked) {
      try {
        this.#local!.markDone(attempt.scope, attempt.key);
      } catch {
        // As with done below: a lost mark only lets a later duplicate run again.
      }
      return outcome;
    }
    let pending: void | Promise<void>;
    try {
      // A token owns nothing when the claim failed; done marks the key regardless.
      pending = this.#store.done(attempt.scope, attempt.key, attempt.token ?? "");
    } catch {
      // The work happened and stays finished; a lost mark only lets a later duplicate run again.
      return outcome;
    }
    return pending instanceof Promise ? pending.then(() => outcome, () => outcome) : outcome;
  }

  /** Releases the attempt's claim, if it holds one, then gives `outcome`. */
  release(attempt: KeyClaim, outcome: Outcome): Outcome | Promise<Outcome> {
    if (attempt.key === null || attempt.token === null) return outcome;
    let pending: void | Promise<void>;
    try {
      pending = this.#store.release(attempt.scope, attempt.key, attempt.token);
    } catch {
      // The outcome stands; a claim that could not be released lapses with its lease.
      return outcome;
    }
    return pending instanceof Promise ? pending.then(() => outcome, () => outcome) : outcome;
  }
}
