/**
 * The persistent dedupe store of one host (`dedupe.store: sqlite:PATH`), on
 * Deno's built-in `node:sqlite`.
 *
 * @module
 */

import type { Logger } from "../worker/worker.ts";
import { ClaimTokens } from "./claim_token.ts";
import type { Claim, DedupeStore } from "./store.ts";
import { errorText } from "../error_text.ts";
import { CHUNK_SIZES, type SqliteConnection } from "./sqlite_connection.ts";
import { SqliteFileWatch } from "./sqlite_file_watch.ts";

export { SQLITE_SCHEMA_VERSION } from "./sqlite_connection.ts";

/** Options of {@linkcode SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; created if missing (its directory must exist). */
  readonly path: string;
  /** How long a done key is remembered, in milliseconds. */
  readonly ttlMs: number;
  /** What a message gets when a claim fails (`dedupe.on_store_error`). */
  readonly onError?: "retry" | "process";
  /** Reports failed purges and the path breaking and working again. */
  readonly log?: Logger;
  /**
   * The clock, in milliseconds since the epoch (default `Date.now`): deadlines
   * outlive the process and are shared with other processes, so they are
   * wall-clock times.
   */
  readonly now?: () => number;
  /** Time between purges of expired keys while none are left behind (default 10 s). */
  readonly purgeIntervalMs?: number;
  /** The most expired done keys deleted, and keys swept for lapsed claims, per purge (default 1000). */
  readonly purgeBatch?: number;
  /**
   * Least time between two checks that the path still names the open file,
   * and between two attempts to reopen it once it does not (default 1 s).
   */
  readonly pathCheckMs?: number;
}

/** The next purge while expired keys are left: soon, so that purging keeps up with inserts. */
const PURGE_CATCH_UP_MS = 50;

const CLAIM = 0;
const DONE = 1;
const RELEASE = 2;
const RENEW = 3;
type OpKind = typeof CLAIM | typeof DONE | typeof RELEASE | typeof RENEW;

const DONE_CLAIM: Claim = Object.freeze({ status: "done" });
const BUSY_CLAIM: Claim = Object.freeze({ status: "busy" });

/** One call waiting for the next batch; the batch fills in its answer. */
interface Op {
  readonly kind: OpKind;
  readonly scope: string;
  readonly key: string;
  /** The token to claim with, or the one that must own the claim. */
  readonly token: string;
  readonly leaseMs: number;
  readonly resolve: (value: Claim | undefined) => void;
  readonly reject: (error: Error) => void;
  result: Claim | undefined;
  failure: Error | undefined;
}

/**
 * A {@linkcode DedupeStore} in an SQLite database file: done keys survive
 * restarts and crashes, and processes on one host may share the file.
 *
 * - One row per key: `token` is the claim's owner while a handler runs and
 *   NULL once the key is done; `expires_at` is the lease's end, then the
 *   ttl's end. Every call is one conditional write of that row (an upsert,
 *   or a delete or update that compares the token), so it is atomic.
 * - Calls made in the same turn of the event loop are run as one transaction
 *   (group commit) at the end of it: a burst of messages costs one commit,
 *   not one each, and its claims and done marks are written with multi-row
 *   statements. A call resolves once its transaction committed, so a
 *   handler's success is on disk before its message is finished.
 * - WAL journal with `synchronous = NORMAL`: a commit is written to the WAL
 *   before it returns, so it survives the process being killed (SIGKILL,
 *   OOM); only an OS crash or power loss can lose the last commits, which
 *   `FULL` (an fsync per commit) would prevent at several times the cost.
 * - Expired keys are deleted in the background, a bounded batch per tick:
 *   done keys past their ttl through an index of done keys only (so that a
 *   claim costs no index entry), and lapsed claims by a sweep of
 *   `purgeBatch` keys per tick. Claims lapse only when their process died,
 *   and nsqd's redelivery of the message normally takes them over first.
 *
 * @example
 * ```ts
 * import { SqliteStore } from "./sqlite_store.ts";
 *
 * const store = new SqliteStore({ path: "/var/lib/nsqworker/dedupe.db", ttlMs: 86_400_000 });
 * const claim = await store.claim("pageviews/counter", "event-1", 70_000);
 * if (claim.status === "claimed") await store.done("pageviews/counter", "event-1", claim.token);
 * await store.close();
 * ```
 */
export class SqliteStore implements DedupeStore {
  readonly onError: "retry" | "process";
  readonly #path: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #purgeIntervalMs: number;
  readonly #purgeBatch: number;
  /** The database, closed while its path names another file or none. */
  readonly #file: SqliteFileWatch;
  /** Where the sweep for lapsed claims goes on: the last key it examined. */
  #sweepScope = "";
  #sweepKey = "";
  readonly #tokens = new ClaimTokens();
  #queue: Op[] = [];
  #purgeTimer: ReturnType<typeof setTimeout> | undefined;
  #closed: Promise<void> | null = null;
  #batches = 0;
  #ops = 0;

  /**
   * Opens (or creates) the database and its schema. Throws an `Error` that
   * names the path when the file cannot be opened, is not a database, or was
   * written by a newer schema; a `RangeError` on bad options.
   */
  constructor(options: SqliteStoreOptions) {
    const { path, ttlMs, purgeIntervalMs = 10_000, purgeBatch = 1_000 } = options;
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
      throw new RangeError(
        `Cannot open the sqlite dedupe store as 'ttlMs' must be a positive integer: current value is ${ttlMs}`,
      );
    }
    if (!(purgeIntervalMs > 0) || !Number.isSafeInteger(purgeBatch) || purgeBatch < 1) {
      throw new RangeError(
        `Cannot open the sqlite dedupe store as 'purgeIntervalMs' and 'purgeBatch' must be positive: current values are ${purgeIntervalMs} and ${purgeBatch}`,
      );
    }
    this.onError = options.onError ?? "retry";
    this.#path = path;
    this.#ttlMs = ttlMs;
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
    this.#purgeIntervalMs = purgeIntervalMs;
    this.#purgeBatch = purgeBatch;
    try {
      this.#file = new SqliteFileWatch({
        path,
        checkMs: options.pathCheckMs ?? 1_000,
        log: options.log,
        // Where the sweep had got to is a place in the old file.
        onReopen: () => {
          this.#sweepScope = this.#sweepKey = "";
        },
      });
    } catch (error) {
      throw this.#error(`Cannot open the sqlite dedupe store at ${path}`, error);
    }
    this.#schedulePurge(this.#purgeIntervalMs);
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /** Transactions committed and calls they carried, to see what group commit saves. */
  get commits(): { readonly batches: number; readonly ops: number } {
    return { batches: this.#batches, ops: this.#ops };
  }

  /** Claims `key` in `scope` for `leaseMs`, unless it is done or claimed by a live lease. */
  claim(scope: string, key: string, leaseMs: number): Promise<Claim> {
    return this.#enqueue(CLAIM, scope, key, this.#tokens.next(), leaseMs) as Promise<Claim>;
  }

  /** Marks `key` done for the ttl, whoever holds its claim. */
  done(scope: string, key: string, _token: string): Promise<void> {
    return this.#enqueue(DONE, scope, key, "", 0) as Promise<void>;
  }

  /** Deletes the claim on `key` if `token` still owns it. */
  release(scope: string, key: string, token: string): Promise<void> {
    return this.#enqueue(RELEASE, scope, key, token, 0) as Promise<void>;
  }

  /** Extends the claim on `key` to `leaseMs` from now if `token` still owns it. */
  renew(scope: string, key: string, token: string, leaseMs: number): Promise<void> {
    return this.#enqueue(RENEW, scope, key, token, leaseMs) as Promise<void>;
  }

  /** Runs the calls still queued, stops the purge and closes the database; safe to call twice. */
  close(): Promise<void> {
    return this.#closed ??= this.#close();
  }

  #close(): Promise<void> {
    clearTimeout(this.#purgeTimer);
    this.#purgeTimer = undefined;
    if (this.#queue.length > 0) this.#flush();
    try {
      this.#file.close();
    } catch (error) {
      return Promise.reject(this.#error("Cannot close the sqlite dedupe store", error));
    }
    return Promise.resolve();
  }

  #enqueue(
    kind: OpKind,
    scope: string,
    key: string,
    token: string,
    leaseMs: number,
  ): Promise<Claim | undefined> {
    if (this.#closed !== null) {
      return Promise.reject(new Error(`the sqlite dedupe store at ${this.#path} is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<Claim | undefined>();
    const op: Op = {
      kind,
      scope,
      key,
      token,
      leaseMs,
      resolve,
      reject,
      result: undefined,
      failure: undefined,
    };
    if (this.#queue.push(op) === 1) {
      queueMicrotask(this.#flush);
    }
    return promise;
  }

  /**
   * Runs every queued call in one transaction, then settles them. Done marks
   * and releases go first, so that a claim of the same key in the batch sees
   * them.
   */
  readonly #flush = (): void => {
    const ops = this.#queue;
    if (ops.length === 0) return;
    this.#queue = [];
    const conn = this.#file.usable();
    if (conn === null) {
      for (const op of ops) op.reject(this.#file.broken!);
      return;
    }
    try {
      conn.begin.run();
    } catch (error) {
      const failure = this.#error(this.#what(), error);
      for (const op of ops) op.reject(failure);
      return;
    }
    const now = this.#now();
    const claims: Op[] = [];
    const dones: Op[] = [];
    for (const op of ops) {
      if (op.kind === CLAIM) claims.push(op);
      else if (op.kind === DONE) dones.push(op);
      else this.#single(conn, op, now);
    }
    if (dones.length > 0) {
      this.#chunked(dones, (n, chunk) => this.#markDone(conn, n, chunk, now));
    }
    if (claims.length > 0) {
      this.#chunked(claims, (n, chunk) => this.#claimAll(conn, n, chunk, now));
    }
    try {
      conn.commit.run();
    } catch (error) {
      try {
        conn.rollback.run();
      } catch {
        // No transaction left to roll back: the commit error says what happened.
      }
      const failure = this.#error(this.#what(), error);
      for (const op of ops) op.reject(failure);
      return;
    }
    this.#batches++;
    this.#ops += ops.length;
    for (const op of ops) {
      if (op.failure === undefined) op.resolve(op.result);
      else op.reject(op.failure);
    }
  };

  /** Runs `ops` in chunks of {@linkcode CHUNK_SIZES}; a chunk that fails fails its calls only. */
  #chunked(ops: Op[], run: (n: number, chunk: Op[]) => void): void {
    let at = 0;
    for (const n of CHUNK_SIZES) {
      for (; ops.length - at >= n; at += n) {
        const chunk = ops.slice(at, at + n);
        try {
          run(n, chunk);
        } catch (error) {
          const failure = this.#error(this.#what(), error);
          for (const op of chunk) op.failure = failure;
        }
      }
    }
  }

  #markDone(conn: SqliteConnection, n: number, chunk: Op[], now: number): void {
    const expiresAt = now + this.#ttlMs;
    const params: (string | number)[] = [];
    for (const op of chunk) params.push(op.scope, op.key, expiresAt);
    conn.dones.get(n)!.run(...params);
  }

  #claimAll(conn: SqliteConnection, n: number, chunk: Op[], now: number): void {
    const params: (string | number)[] = [];
    for (const op of chunk) params.push(op.scope, op.key, op.token, now + op.leaseMs);
    params.push(now);
    const taken = conn.claims.get(n)!.all(...params) as { token: string }[];
    const won = new Set<string>();
    for (const row of taken) won.add(row.token);
    for (const op of chunk) {
      if (won.has(op.token)) {
        op.result = { status: "claimed", token: op.token };
        continue;
      }
      const row = conn.state.get(op.scope, op.key) as { done: number } | undefined;
      op.result = row?.done === 1 ? DONE_CLAIM : BUSY_CLAIM;
    }
  }

  /** A release or a renewal: rare (failures, long handlers), one statement each. */
  #single(conn: SqliteConnection, op: Op, now: number): void {
    try {
      if (op.kind === RELEASE) conn.release.run(op.scope, op.key, op.token);
      else conn.renew.run(now + op.leaseMs, op.scope, op.key, op.token);
    } catch (error) {
      op.failure = this.#error(this.#what(), error);
    }
  }

  #schedulePurge(delayMs: number): void {
    this.#purgeTimer = setTimeout(this.#purgeTick, delayMs);
  }

  /**
   * Deletes up to `purgeBatch` expired done keys and sweeps the next
   * `purgeBatch` keys for lapsed claims; comes back soon while expired done
   * keys are left.
   */
  readonly #purgeTick = (): void => {
    this.#purgeTimer = undefined;
    if (this.#closed !== null) return;
    let deleted = 0;
    const conn = this.#file.usable();
    if (conn !== null) {
      try {
        const now = this.#now();
        deleted = Number(conn.purge.run(now, this.#purgeBatch).changes);
        this.#sweep(conn, now);
      } catch (error) {
        this.#log?.warning("sqlite dedupe store: purging expired keys failed", {
          path: this.#path,
          error: errorText(error),
        });
      }
    }
    this.#schedulePurge(deleted >= this.#purgeBatch ? PURGE_CATCH_UP_MS : this.#purgeIntervalMs);
  };

  /** Deletes the lapsed claims among the next `purgeBatch` keys, wrapping around at the end. */
  #sweep(conn: SqliteConnection, now: number): void {
    const from = [this.#sweepScope, this.#sweepKey] as const;
    const end = conn.sweepEnd.get(...from, this.#purgeBatch - 1) as
      | { scope: string; key: string }
      | undefined;
    if (end === undefined) {
      conn.sweepTail.run(...from, now);
      this.#sweepScope = this.#sweepKey = "";
      return;
    }
    conn.sweepRange.run(...from, end.scope, end.key, now);
    this.#sweepScope = end.scope;
    this.#sweepKey = end.key;
  }

  #what(): string {
    return `sqlite dedupe store at ${this.#path}`;
  }

  #error(what: string, cause: unknown): Error {
    const message = errorText(cause);
    return new Error(`${what}: ${message}`, { cause });
  }
}
