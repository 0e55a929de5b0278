/**
 * Leases on order keys, held by the processes of an entry with
 * `key_concurrency`, so that its limit holds across them.
 *
 * @module
 */

/** One lease held: the place it holds and the token that owns it. */
export interface KeyLease {
  /** What is held, e.g. the redis key of one of the key's N places. */
  readonly place: string;
  readonly token: string;
}

/**
 * At most `limit` leases per key at once, over every process that shares
 * them. A lease lasts `leaseMs` unless renewed, so the places of a process
 * that died free themselves.
 *
 * @example
 * ```ts
 * import type { KeyLeases } from "./key_lease.ts";
 *
 * declare const leases: KeyLeases;
 * const lease = await leases.acquire("account-7", 1);
 * if (lease !== null) {
 *   // … run the handler, renewing every leases.leaseMs / 3, then:
 *   await leases.release(lease);
 * }
 * ```
 */
export interface KeyLeases {
  /** How long a lease lasts from its acquisition or last renewal. */
  readonly leaseMs: number;
  /** A lease on `key` if fewer than `limit` are held; null when all are. Rejects when the store fails. */
  acquire(key: string, limit: number): Promise<KeyLease | null>;
  /** Extends the lease by `leaseMs` from now; false when it was lost (it expired, and may be held elsewhere). */
  renew(lease: KeyLease): Promise<boolean>;
  /** Gives the lease up, unless it is held by another token by now. */
  release(lease: KeyLease): Promise<void>;
}
