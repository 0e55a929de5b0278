/**
 * One open sqlite dedupe database: the connection, its schema and its
 * prepared statements, and which file it opened (device and inode), so
 * that the store can tell when its path no longer names that file.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { errorText } from "../error_text.ts";

/** The schema this version writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 1;

/**
 * How long a statement waits for another process's write lock. The wait
 * blocks the event loop, so it is short; other processes hold the lock for
 * one batch, well under a millisecond.
 */
const BUSY_TIMEOUT_MS = 2_000;
/** Cap of the WAL file kept after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

/**
 * Rows per statement: a batch's claims and done marks are written with
 * multi-row statements of these sizes (largest first), which costs about
 * 40 % less than a statement per row.
 */
export const CHUNK_SIZES = [32, 8, 1] as const;

/** The files beside a WAL database, which a database opened at the path reads as its own. */
export const JOURNAL_SUFFIXES = ["-wal", "-shm"] as const;

/** The file a path names: equal ids mean the same file. */
export interface FileId {
  readonly dev: number;
  readonly ino: number;
}

/**
 * The file `path` names now, or the reason it names none (removed, its
 * directory gone, not a regular file).
 */
export function fileIdOf(path: string): FileId | string {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    return errorText(error);
  }
  if (!info.isFile) return "it is not a regular file";
  return { dev: info.dev, ino: info.ino ?? 0 };
}

/** An open database with the statements the store runs. */
export class SqliteConnection {
  readonly db: DatabaseSync;
  /** The file opened, as it was right after opening. */
  readonly file: FileId;
  /**
   * Its `-wal` and `-shm` files as they were right after opening: once the
   * path names another file, those still at the path are this database's,
   * unless another process has opened the new file since (other ids).
   */
  readonly journal: readonly (readonly [path: string, id: FileId])[];
  readonly begin: StatementSync;
  readonly commit: StatementSync;
  readonly rollback: StatementSync;
  /** Multi-row statements by their number of rows (see {@linkcode CHUNK_SIZES}). */
  readonly claims = new Map<number, StatementSync>();
  readonly dones = new Map<number, StatementSync>();
  readonly state: StatementSync;
  readonly release: StatementSync;
  readonly renew: StatementSync;
  readonly purge: StatementSync;
  readonly sweepEnd: StatementSync;
  readonly sweepRange: StatementSync;
  readonly sweepTail: StatementSync;

  /**
   * Opens (or creates) the database at `path` and its schema; throws the
   * cause (the caller names the path) when the file cannot be opened, is
   * not a database, or was written by a newer schema.
   */
  constructor(path: string) {
    const db = new DatabaseSync(path);
    try {
      openSchema(db);
      const file = fileIdOf(path);
      if (typeof file === "string") throw new Error(`it vanished once opened: ${file}`);
      this.file = file;
      this.journal = JOURNAL_SUFFIXES.flatMap((suffix) => {
        const id = fileIdOf(path + suffix);
        return typeof id === "string" ? [] : [[path + suffix, id] as const];
      });
    } catch (error) {
      try {
        db.close();
      } catch {
        // The open error is the one worth reporting.
      }
      throw error;
    }
    this.db = db;
    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
    for (const n of CHUNK_SIZES) {
      this.claims.set(n, statementFor(db, "claim", n));
      this.dones.set(n, statementFor(db, "done", n));
    }
    this.state = db.prepare(
      "SELECT token IS NULL AS done FROM dedupe_keys WHERE scope = ? AND key = ?",
    );
    this.release = db.prepare(
      "DELETE FROM dedupe_keys WHERE scope = ? AND key = ? AND token = ?",
    );
    this.renew = db.prepare(
      "UPDATE dedupe_keys SET expires_at = ? WHERE scope = ? AND key = ? AND token = ?",
    );
    this.purge = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) IN
         (SELECT scope, key FROM dedupe_keys WHERE token IS NULL AND expires_at <= ? LIMIT ?)`,
    );
    this.sweepEnd = db.prepare(
      `SELECT scope, key FROM dedupe_keys WHERE (scope, key) > (?, ?)
       ORDER BY scope, key LIMIT 1 OFFSET ?`,
    );
    this.sweepRange = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) > (?, ?) AND (scope, key) <= (?, ?)
         AND token IS NOT NULL AND expires_at <= ?`,
    );
    this.sweepTail = db.prepare(
      `DELETE FROM dedupe_keys WHERE (scope, key) > (?, ?)
         AND token IS NOT NULL AND expires_at <= ?`,
    );
  }
}

/**
 * The multi-row statement of `n` rows. A claim takes a free or expired key
 * and returns its token; a key held by a live claim or done mark returns
 * none. A done mark wins over any claim, even one taken after the handler's
 * lease lapsed: the work happened.
 */
function statementFor(db: DatabaseSync, kind: "claim" | "done", n: number): StatementSync {
  const values = (row: string) => Array.from({ length: n }, () => row).join(", ");
  return db.prepare(
    kind === "claim"
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
