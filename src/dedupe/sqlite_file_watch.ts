/**
 * The sqlite dedupe store's database, and the watch that its path still
 * names the file it opened.
 *
 * @module
 */

import type { Logger } from "../worker/worker.ts";
import { errorText } from "../error_text.ts";
import { type FileId, fileIdOf, JOURNAL_SUFFIXES, SqliteConnection } from "./sqlite_connection.ts";

/** Options of {@linkcode SqliteFileWatch}. */
export interface SqliteFileWatchOptions {
  /** The database file; created if missing (its directory must exist). */
  readonly path: string;
  /**
   * Least time between two checks that the path still names the open file,
   * and between two attempts to reopen it once it does not.
   */
  readonly checkMs: number;
  /** Reports the path breaking and working again. */
  readonly log?: Logger | undefined;
  /** Called when the path is opened again: what the caller kept about the old file is stale. */
  readonly onReopen?: () => void;
}

/**
 * The open database at a path, checked (at most every `checkMs`) to still be
 * the file that the path names: a file removed or replaced under a running
 * store would take claims nobody else sees, and another process opening the
 * path would start a new database, splitting dedupe silently. So once the
 * path names another file, or none, the watch closes the database, deletes
 * its journal left at the path, and has no database, naming the path in
 * {@linkcode SqliteFileWatch.broken}, until it can open the path again.
 *
 * @example
 * ```ts
 * import { SqliteFileWatch } from "./sqlite_file_watch.ts";
 *
 * const file = new SqliteFileWatch({ path: "/var/lib/nsqworker/dedupe.db", checkMs: 1_000 });
 * const conn = file.usable();
 * if (conn === null) console.error(file.broken!.message);
 * file.close();
 * ```
 */
export class SqliteFileWatch {
  readonly #path: string;
  readonly #checkMs: number;
  readonly #log: Logger | undefined;
  readonly #onReopen: (() => void) | undefined;
  /** The open database; null while its path does not work. */
  #conn: SqliteConnection | null;
  /** Why the database is not open: what calls fail with meanwhile. */
  #broken: Error | null = null;
  /** When (monotonic ms) the path is next checked, or reopened while broken. */
  #nextCheck: number;

  /**
   * Opens (or creates) the database and its schema; throws the cause (the
   * caller names the path) when the file cannot be opened, is not a
   * database, or was written by a newer schema.
   */
  constructor(options: SqliteFileWatchOptions) {
    this.#path = options.path;
    this.#checkMs = options.checkMs;
    this.#log = options.log;
    this.#onReopen = options.onReopen;
    this.#conn = new SqliteConnection(this.#path);
    this.#nextCheck = performance.now() + this.#checkMs;
  }

  /** Why there is no database, while {@linkcode usable} returns null. */
  get broken(): Error | null {
    return this.#broken;
  }

  /**
   * The open database, once its path still names the file it opened
   * (checked at most every `checkMs`); else it closes it, and null until it
   * can open the path again (tried at most every `checkMs`).
   */
  usable(): SqliteConnection | null {
    const at = performance.now();
    if (at < this.#nextCheck) return this.#conn;
    this.#nextCheck = at + this.#checkMs;
    if (this.#conn !== null) {
      const now = fileIdOf(this.#path);
      if (typeof now !== "string" && sameFile(now, this.#conn.file)) return this.#conn;
      const found = typeof now === "string" ? now : "another file is there now";
      this.#broken = new Error(
        `the sqlite dedupe store's file ${this.#path} was removed or replaced while open (${found}); calls fail until the path can be opened again`,
      );
      this.#log?.error("sqlite dedupe store: its file was removed or replaced; closed it", {
        path: this.#path,
        error: this.#broken.message,
      });
      this.#closeQuietly(this.#conn);
      this.#removeJournalOf(this.#conn);
      this.#conn = null;
      // Calls fail until the next attempt: the removal shows in the counts.
      return null;
    }
    try {
      removeStaleJournal(this.#path);
      this.#conn = new SqliteConnection(this.#path);
    } catch (error) {
      this.#broken = new Error(
        `Cannot reopen the sqlite dedupe store at ${this.#path}: ${errorText(error)}`,
        { cause: error },
      );
      return null;
    }
    this.#broken = null;
    this.#onReopen?.();
    this.#log?.warning(
      "sqlite dedupe store reopened; keys done before are known only if the file is the one it had",
      { path: this.#path },
    );
    return this.#conn;
  }

  /** Closes the database, if open; throws the cause when that fails. */
  close(): void {
    const conn = this.#conn;
    this.#conn = null;
    conn?.db.close();
  }

  #closeQuietly(conn: SqliteConnection): void {
    try {
      conn.db.close();
    } catch (error) {
      this.#log?.warning("sqlite dedupe store: closing the removed file failed", {
        path: this.#path,
        error: errorText(error),
      });
    }
  }

  /**
   * Deletes the `-wal` and `-shm` files of the closed `conn` still at the
   * path. SQLite does not checkpoint a database whose file was moved, so its
   * journal stays there, and a file renamed over the path would be read
   * through it: with the old file's pages, not its own.
   */
  #removeJournalOf(conn: SqliteConnection): void {
    for (const [path, id] of conn.journal) {
      const now = fileIdOf(path);
      if (typeof now === "string" || !sameFile(now, id)) continue;
      try {
        Deno.removeSync(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        this.#log?.warning("sqlite dedupe store: deleting the replaced file's journal failed", {
          path,
          error: errorText(error),
        });
      }
    }
  }
}

/**
 * Deletes the `-wal` and `-shm` files left beside `path` when the database
 * file itself is gone: a new database would otherwise read the old one's
 * journal as its own.
 */
function removeStaleJournal(path: string): void {
  if (typeof fileIdOf(path) !== "string") return;
  for (const suffix of JOURNAL_SUFFIXES) {
    try {
      Deno.removeSync(path + suffix);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

function sameFile(a: FileId, b: FileId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
