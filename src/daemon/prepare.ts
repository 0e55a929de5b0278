/**
 * Everything `check`, `run` (and its reloads) and the in-process test daemon
 * verify before anything connects, in one place so that they cannot drift
 * apart: the config, every worker module and its options, the TLS files and
 * the compression codec. Every problem is reported at once, each at its
 * `file:line:col`.
 *
 * @module
 */

import { dirname } from "node:path";
import { ConfigError, type ConfigIssue } from "../config/config_error.ts";
import { type ConfigDraft, readFailure } from "../config/load.ts";
import type { Config, TlsConfig } from "../config/types.ts";
import { batchSettings } from "../batch/batch_settings.ts";
import { type ConnectionOptions, connectionOptions } from "../nsq/connection_options.ts";
import {
  type LoadedWorker,
  loadWorkers,
  moduleSource,
  type WorkerSource,
} from "../worker/worker_loader.ts";

/** A config ready to run: its workers loaded and its connection settings read. */
export interface Prepared {
  readonly config: Config;
  /** The worker of each entry, in the order of `config.workers`. */
  readonly workers: readonly LoadedWorker[];
  /** nsqd connection settings, TLS material read. */
  readonly connection: ConnectionOptions;
}

/** Where {@linkcode prepare} gets what lies outside the config text. */
export interface PrepareOptions {
  /** Worker modules; by default imported from `workers/`. */
  readonly workers?: WorkerSource;
  /** Reads a TLS file; by default from disk. */
  readonly readFile?: (path: string) => Uint8Array;
  /** Whether this process may load native addons (snappy); by default asks Deno. */
  readonly ffiGranted?: () => boolean;
}

const TLS_FILES = [
  ["caFile", "ca_file"],
  ["certFile", "cert_file"],
  ["keyFile", "key_file"],
] as const;

/**
 * Checks everything a draft config needs to run and returns it ready, or
 * throws one {@link ConfigError} with every problem found: those of the
 * text, of each worker module that could be named, of the TLS files and of
 * the codec, in file order.
 *
 * @example
 * ```ts
 * const { config, workers, connection } = await prepare(await readConfigDraft("config.yaml"));
 * ```
 */
export async function prepare(draft: ConfigDraft, options: PrepareOptions = {}): Promise<Prepared> {
  const source = options.workers ?? moduleSource();
  const readFile = options.readFile ?? ((path: string) => Deno.readFileSync(path));
  const ffiGranted = options.ffiGranted ??
    (() => Deno.permissions.querySync({ name: "ffi" }).state === "granted");
  const loaded = await loadWorkers(draft.workers, draft.keys, source);
  const issues: ConfigIssue[] = [...draft.issues, ...loaded.issues];
  let files = new Map<string, Uint8Array>();
  if (draft.nsq !== null) {
    files = readTlsFiles(draft, "nsq", draft.nsq.tls, readFile, issues);
    if (draft.nsq.compression === "snappy" && !ffiGranted()) {
      issues.push(
        issueAt(
          draft,
          "nsq.compression",
          "nsq.compression is snappy, whose codec is a native addon that needs --allow-ffi, " +
            "which this process does not have (nor does the compiled binary): use deflate or none",
        ),
      );
    }
  }
  // The redis store reads its own at start; checked here so that check and run agree.
  if (draft.config !== null) {
    readTlsFiles(draft, "dedupe", draft.config.dedupe.tls, readFile, issues);
  }
  const store = draft.config?.dedupe.store;
  if (store?.kind === "sqlite") {
    const problem = sqliteStoreProblem(store.path);
    if (problem !== null) issues.push(issueAt(draft, "dedupe.store", problem));
  }
  if (draft.config !== null) issues.push(...batchIssues(draft, draft.config, loaded.workers));
  if (draft.config !== null) issues.push(...protectIssues(draft, draft.config, loaded.workers));
  if (draft.config === null || issues.length > 0) throw new ConfigError(inFileOrder(issues));
  const config = draft.config;
  return {
    config,
    workers: config.workers.map((_, i) => loaded.workers.get(i)!),
    connection: connectionOptions(config.nsq, (path) => files.get(path)!),
  };
}

/**
 * An entry's `batch:` needs a worker with `handleBatch`, and the batch size
 * the worker declares must fit the entry's `max_in_flight` (a size written
 * in the entry was checked with the config).
 */
function batchIssues(
  draft: ConfigDraft,
  config: Config,
  workers: ReadonlyMap<number, LoadedWorker>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [i, entry] of config.workers.entries()) {
    const worker = workers.get(i);
    if (worker === undefined) continue;
    const settings = batchSettings(entry, worker.definition);
    if (settings === null) {
      if (entry.batch === null) continue;
      const path = `workers[${i}].batch`;
      issues.push(
        issueAt(
          draft,
          path,
          `${path} is only for a worker with handleBatch(); ${worker.file} has handle()`,
        ),
      );
    } else if (settings.size > entry.maxInFlight) {
      issues.push({
        ...entry.workerLocation,
        path: `workers[${i}].worker`,
        message: `${worker.file} declares batch.size ${settings.size}, above this entry's ` +
          `max_in_flight ${entry.maxInFlight}, so a batch could never fill: set batch.size or ` +
          `max_in_flight on this entry`,
      });
    }
  }
  return issues;
}

/**
 * `key_concurrency` needs the worker's `orderKey` (and no `processes`), and a shared
 * `rate_limit` a redis dedupe store to be shared in (reported once, where it
 * is written, when entries inherit it from `defaults:`).
 */
function protectIssues(
  draft: ConfigDraft,
  config: Config,
  workers: ReadonlyMap<number, LoadedWorker>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const redis = config.dedupe.store.kind === "redis";
  const sharedAt = new Set<string>();
  for (const [i, entry] of config.workers.entries()) {
    const worker = workers.get(i);
    if (entry.keyConcurrency !== null && worker && worker.definition.orderKey === undefined) {
      const path = `workers[${i}].key_concurrency`;
      issues.push(
        issueAt(
          draft,
          path,
          `${path} needs an orderKey(body, msg) in the worker, to say which messages share a ` +
            `key; ${worker.file} has none`,
        ),
      );
    }
    if (entry.keyConcurrency !== null && entry.processes > 0) {
      // orderKey reads the decoded body, which with processes lives only in the child.
      const path = `workers[${i}].key_concurrency`;
      issues.push(
        issueAt(
          draft,
          path,
          `${path} cannot be used with processes (${entry.processes}) yet: the order key is ` +
            `read in the daemon, the body in the child; use processes: 0 for this entry`,
        ),
      );
    }
    if (!redis && entry.rateLimit?.shared) {
      const own = `workers[${i}].rate_limit`;
      sharedAt.add(own in draft.keys ? own : "defaults.rate_limit");
    }
  }
  for (const path of sharedAt) {
    issues.push(
      issueAt(
        draft,
        `${path}.shared`,
        `${path}.shared needs a redis dedupe store to keep the rate in (dedupe.store: ` +
          `redis://HOST:PORT/DB), got ${config.dedupe.store.kind}`,
      ),
    );
  }
  return issues;
}

/** Reads every TLS file `<section>.tls` names; one that cannot be read is an issue at its key. */
function readTlsFiles(
  draft: ConfigDraft,
  section: "nsq" | "dedupe",
  tls: TlsConfig | null,
  readFile: (path: string) => Uint8Array,
  issues: ConfigIssue[],
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  if (tls === null) return files;
  for (const [prop, key] of TLS_FILES) {
    const path = tls[prop];
    if (path === null || files.has(path)) continue;
    try {
      files.set(path, readFile(path));
    } catch (error) {
      issues.push(
        issueAt(
          draft,
          `${section}.tls.${key}`,
          `${section}.tls.${key} cannot be read: ${readFailure(error)}`,
        ),
      );
    }
  }
  return files;
}

/**
 * Why a sqlite store at `path` could not be opened, found without creating
 * anything (`check` writes nothing): its directory must exist, and the file,
 * if there, must be a sqlite database (or empty).
 */
function sqliteStoreProblem(path: string): string | null {
  const what = `dedupe.store must name a sqlite file in an existing directory, got ${path}`;
  try {
    const dir = Deno.statSync(dirname(path));
    if (!dir.isDirectory) return `${what}, whose ${dirname(path)} is not a directory`;
  } catch (error) {
    return `${what}, whose directory cannot be read: ${readFailure(error)}`;
  }
  let header: Uint8Array;
  try {
    header = readHead(path, SQLITE_HEADER.length);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    return `${what}, which cannot be read: ${readFailure(error)}`;
  }
  if (header.length > 0 && new TextDecoder().decode(header) !== SQLITE_HEADER) {
    return `${what}, which is not a sqlite database`;
  }
  return null;
}

/** The first bytes of every sqlite database file. */
const SQLITE_HEADER = "SQLite format 3\0";

function readHead(path: string, bytes: number): Uint8Array {
  using file = Deno.openSync(path, { read: true });
  if (!file.statSync().isFile) throw new Error("it is not a regular file");
  const buffer = new Uint8Array(bytes);
  const n = file.readSync(buffer) ?? 0;
  return buffer.subarray(0, n);
}

/** An issue at the value of the key at `path`. */
function issueAt(draft: ConfigDraft, path: string, message: string): ConfigIssue {
  const place = draft.keys[path]?.value;
  return place === undefined
    ? { file: draft.file, line: null, col: null, path, message }
    : { ...place, path, message };
}

/** By line and column; issues without a place last, each group in the order found. */
function inFileOrder(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const rank = (issue: ConfigIssue) => (issue.line ?? Infinity) * 1e6 + (issue.col ?? 0);
  return issues.map((issue, i) => ({ issue, i }))
    .sort((a, b) => rank(a.issue) - rank(b.issue) || a.i - b.i)
    .map(({ issue }) => issue);
}
