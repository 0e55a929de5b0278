/**
 * The dedupe store contract: what the memory, sqlite and redis stores
 * implement and what the task runner calls for every message.
 *
 * A key moves from free to claimed (a handler is running it, for a lease) to
 * done (it was handled, remembered for the store's ttl). A claim is owned by
 * the token that `claim()` returned, so a handler whose lease lapsed cannot
 * release a claim that someone else has taken since.
 *
 * @module
 */

import type { SharedRedis } from "./shared_redis.ts";

/**
 * The answer of {@linkcode DedupeStore.claim}: `"claimed"` (run the handler,
 * then call `done` or `release` with `token`), `"done"` (already handled) or
 * `"busy"` (a live claim is held elsewhere).
 */
export type Claim =
  | { readonly status: "claimed"; readonly token: string }
  | { readonly status: "done" }
  | { readonly status: "busy" };

/**
 * A store of dedupe keys, shared by every entry of the process (or, for
 * sqlite and redis, by several processes). `scope` is `"<topic>/<channel>"`:
 * keys are scoped per entry, because NSQ message ids are unique per topic
 * only. Methods may be synchronous, so that an in-memory store costs no
 * promise per message.
 *
 * @example
 * ```ts
 * import type { DedupeStore } from "./store.ts";
 *
 * async function once(store: DedupeStore, key: string, work: () => Promise<void>) {
 *   const claim = await store.claim("pageviews/counter", key, 70_000);
 *   if (claim.status !== "claimed") return;
 *   try {
 *     await work();
 *   } catch (error) {
 *     await store.release("pageviews/counter", key, claim.token);
 *     throw error;
 *   }
 *   await store.done("pageviews/counter", key, claim.token);
 * }
 * ```
 */
export interface DedupeStore {
  /**
   * What a message gets when its `claim` fails (`dedupe.on_store_error`):
   * `"retry"` (the default) requeues it; `"process"` runs its handler without
   * dedupe. Only stores that can fail (sqlite, redis) set it.
   */
  readonly onError?: "retry" | "process";
  /**
   * Atomically: if `key` is done → `"done"`; if claimed by a live lease →
   * `"busy"`; else claim it for `leaseMs` and return a token.
   */
  claim(scope: string, key: string, leaseMs: number): Claim | Promise<Claim>;
  /**
   * Marks `key` done (remembered for the store's ttl) and drops the claim if
   * `token` still owns it. A stale token still marks the key done: the work
   * did happen.
   */
  done(scope: string, key: string, token: string): void | Promise<void>;
  /** Drops the claim only if `token` still owns it (compare-and-delete). */
  release(scope: string, key: string, token: string): void | Promise<void>;
  /** Extends the claim to `leaseMs` from now if `token` still owns it; used while a long handler runs. */
  renew(scope: string, key: string, token: string, leaseMs: number): void | Promise<void>;
  /** Flushes and closes the store; safe to call twice. */
  close(): Promise<void>;
  /**
   * Process-local stores only (the memory store): the state of `key` now,
   * where a lapsed claim or an expired done key is `"free"`. Nothing else
   * can claim a key in the same synchronous run, so a handler that returns
   * without a promise needs no claim: `check`, run it, `markDone`. A
   * handler that returns a promise is claimed right after it returns.
   */
  check?(scope: string, key: string): "free" | "done" | "busy";
  /** Marks `key` done, as `done` does, without a token; cheapest just after its `check`. */
  markDone?(scope: string, key: string): void;
  /**
   * The redis stores only: their redis, for the order leases and shared rate
   * limits that every process of an entry keeps together.
   */
  readonly redis?: SharedRedis;
}
