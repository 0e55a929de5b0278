/**
 * The persistent dedupe store of one host (`dedupe.store: sqlite:PATH`), on
 * Deno's built-in `node:sqlite`.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Logger } from "../worker.ts";
import { ClaimTokens } from "./claim_token.ts";
import type { Claim, DedupeStore } from "./store.ts";
import { errorText } from "../error_text.ts";

/** Options of {@linkcode SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; created if missing (its directory must exist). */
  readonly path: string;
  /** How long a done key is remembered, in milliseconds. */
  readonly ttlMs: number;
  /** What a message gets when a claim fails (`dedupe.on_store_error`). */
  readonly onError?: "retry" | "process";
  /** Reports failed purges; nothing else is logged. */
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
}

/** The schema this version writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 1;

/**
 * How long a statement waits for another process's write lock. The wait
 * blocks the event loop, so it is short; other processes hold the lock for
 * one batch, well under a millisecond.
 */
const BUSY_TIMEOUT_MS = 2_000;
/** The next purge while expired keys are left: soon, so that purging keeps up with inserts. */
const PURGE_CATCH_UP_MS = 50;
/** Cap of the WAL file kept after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

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
 * Rows per statement: a batch's claims and done marks are written with
 * multi-row statements of these sizes (largest first), which costs about
 * 40 % less than a statement per row.
 */
const CHUNK_SIZES = [32, 8, 1] as const;

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
  readonly #db: DatabaseSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #rollback: StatementSync;
  /** Multi-row statements by their number of rows (see {@linkcode statementFor}). */
  readonly #claims = new Map<number, StatementSync>();
  readonly #dones = new Map<number, StatementSync>();
  readonly #state: StatementSync;
  readonly #release: StatementSync;
  readonly #renew: StatementSync;
  readonly #purge: StatementSync;
  readonly #sweepEnd: StatementSync;
  readonly #sweepRange: StatementSync;
  readonly #sweepTail: StatementSync;
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
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      openSchema(db);
    } catch (error) {
      try {
        db?.close();
      } catch {
        // The open error is the one worth reporting.
      }
      throw this.#error(`Cannot open the sqlite dedupe store at ${path}`, error);
    }
    this.#db = db;
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    this.#rollback = db.prepare("ROLLBACK");
    for (const n of CHUNK_SIZES) {
      this.#claims.set(n, statementFor(db, CLAIM, n));
      this.#dones.set(n, statementFor(db, DONE, n));
    }
    this.#state = db.prepare(
      "SELECT token IS NULL AS done FROM dedupe_keys WHERE scope = ? AND key = ?",
    );
    this.#release = db.prepare(
      "DELETE FROM dedupe_keys WHERE scope = ? AND key = ? AND token = ?",
    );
    this.#renew = db.prepare(
      "UPDATE dedupe_keys SET expires_at = ? WHERE scope = ? AND key = ? AND token = ?",
    );
    this.#purge = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) IN
         (SELECT scope, key FROM dedupe_keys WHERE token IS NULL AND expires_at <= ? LIMIT ?)`,
    );
    this.#sweepEnd = db.prepare(
      `SELECT scope, key FROM dedupe_keys WHERE (scope, key) > (?, ?)
       ORDER BY scope, key LIMIT 1 OFFSET ?`,
    );
    this.#sweepRange = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) > (?, ?) AND (scope, key) <= (?, ?)
         AND token IS NOT NULL AND expires_at <= ?`,
    );
    this.#sweepTail = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) > (?, ?)
         AND token IS NOT NULL AND expires_at <= ?`,
    );
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
      this.#db.close();
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
    try {
      this.#begin.run();
    } catch (error) {
      const failure = this.#error("sqlite dedupe store", error);
      for (const op of ops) op.reject(failure);
      return;
    }
    const now = this.#now();
    const claims: Op[] = [];
    const dones: Op[] = [];
    for (const op of ops) {
      if (op.kind === CLAIM) claims.push(op);
      else if (op.kind === DONE) dones.push(op);
      else this.#single(op, now);
    }
    if (dones.length > 0) this.#chunked(dones, (n, chunk) => this.#markDone(n, chunk, now));
    if (claims.length > 0) this.#chunked(claims, (n, chunk) => this.#claimAll(n, chunk, now));
    try {
      this.#commit.run();
    } catch (error) {
      try {
        this.#rollback.run();
      } catch {
        // No transaction left to roll back: the commit error says what happened.
      }
      const failure = this.#error("sqlite dedupe store", error);
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
          const failure = this.#error("sqlite dedupe store", error);
          for (const op of chunk) op.failure = failure;
        }
      }
    }
  }

  #markDone(n: number, chunk: Op[], now: number): void {
    const expiresAt = now + this.#ttlMs;
    const params: (string | number)[] = [];
    for (const op of chunk) params.push(op.scope, op.key, expiresAt);
    this.#dones.get(n)!.run(...params);
  }

  #claimAll(n: number, chunk: Op[], now: number): void {
    const params: (string | number)[] = [];
    for (const op of chunk) params.push(op.scope, op.key, op.token, now + op.leaseMs);
    params.push(now);
    const taken = this.#claims.get(n)!.all(...params) as { token: string }[];
    const won = new Set<string>();
    for (const row of taken) won.add(row.token);
    for (const op of chunk) {
      if (won.has(op.token)) {
        op.result = { status: "claimed", token: op.token };
        continue;
      }
      const row = this.#state.get(op.scope, op.key) as { done: number } | undefined;
      op.result = row?.done === 1 ? DONE_CLAIM : BUSY_CLAIM;
    }
  }

  /** A release or a renewal: rare (failures, long handlers), one statement each. */
  #single(op: Op, now: number): void {
    try {
      if (op.kind === RELEASE) this.#release.run(op.scope, op.key, op.token);
      else this.#renew.run(now + op.leaseMs, op.scope, op.key, op.token);
    } catch (error) {
      op.failure = this.#error("sqlite dedupe store", error);
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
    try {
      const now = this.#now();
      deleted = Number(this.#purge.run(now, this.#purgeBatch).changes);
      this.#sweep(now);
    } catch (error) {
      this.#log?.warning("sqlite dedupe store: purging expired keys failed", {
        path: this.#path,
        error: errorText(error),
      });
    }
    this.#schedulePurge(deleted >= this.#purgeBatch ? PURGE_CATCH_UP_MS : this.#purgeIntervalMs);
  };

  /** Deletes the lapsed claims among the next `purgeBatch` keys, wrapping around at the end. */
  #sweep(now: number): void {
    const from = [this.#sweepScope, this.#sweepKey] as const;
    const end = this.#sweepEnd.get(...from, this.#purgeBatch - 1) as
      | { scope: string; key: string }
      | undefined;
    if (end === undefined) {
      this.#sweepTail.run(...from, now);
      this.#sweepScope = this.#sweepKey = "";
      return;
    }
    this.#sweepRange.run(...from, end.scope, end.key, now);
    this.#sweepScope = end.scope;
    this.#sweepKey = end.key;
  }

  #error(what: string, cause: unknown): Error {
    const message = errorText(cause);
    return new Error(`${what}: ${message}`, { cause });
  }
}

/**
 * The multi-row statement of `n` rows. A claim takes a free or expired key
 * and returns its token; a key held by a live claim or done mark returns
 * none. A done mark wins over any claim, even one taken after the handler's
 * lease lapsed: the work happened.
 */
function statementFor(
  db: DatabaseSync,
  kind: typeof CLAIM | typeof DONE,
  n: number,
): StatementSync {
  const values = (row: string) => Array.from({ length: n }, () => row).join(", ");
  return db.prepare(
    kind === CLAIM
      ? `INSERT INTO dedupe_keys (scope, key, token, expires_at) VALUES ${values("(?, ?, ?, ?)")}
         ON CONFLICT (scope, key) DO UPDATE
           SET token = excluded.token, expires_at = excluded.expires_at
           WHERE dedupe_keys.expires_at <= ?
         RETURNING token`
      : `INSERT INTO dedupe_keys (scope, key, token, expires_at) VALUES ${values("(?, ?, NULL, ?)")}
         ON CONFLICT (scope, key) DO UPDATE SET token = NULL, expires_at = excluded.expires_at`,
  );
}

/** Sets the journal and sync modes and creates or checks the schema. */
function openSchema(db: DatabaseSync): void {
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string })
    .journal_mode;
  if (mode !== "wal") {
    throw new Error(`the file system does not support WAL mode (journal_mode is ${mode})`);
  }
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
  db.exec("BEGIN IMMEDIATE");
  try {
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number })
      .user_version;
    if (version === 0) {
      db.exec(`
        CREATE TABLE dedupe_keys (
          scope TEXT NOT NULL,
          key TEXT NOT NULL,
          token TEXT,
          expires_at INTEGER NOT NULL,
          PRIMARY KEY (scope, key)
        ) WITHOUT ROWID;
        CREATE INDEX dedupe_keys_done_expiry ON dedupe_keys (expires_at) WHERE token IS NULL;
        PRAGMA user_version = ${SQLITE_SCHEMA_VERSION};
      `);
    } else if (version !== SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `its schema version is ${version}, this nsqworker reads version ${SQLITE_SCHEMA_VERSION}`,
      );
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}
