/**
 * The options a test gives {@linkcode import("./run_worker.ts").runWorker}
 * (and, with the batch's, `runBatch`): the entry's settings and the
 * message's.
 *
 * @module
 */

import type { DedupeStore } from "../dedupe/store.ts";
import type { WorkerOptions } from "../worker/worker.ts";

/** Options of {@linkcode runWorker}; each defaults to what an entry of a config gets. */
export interface RunWorkerOptions<O extends WorkerOptions = WorkerOptions> {
  /** The entry's `options`, merged over the worker's defaults (checked as `check` does). */
  readonly options?: Partial<O>;
  /** The delivery attempt, from 1 (default 1). */
  readonly attempts?: number;
  /** The entry's `max_attempts` (default 5). */
  readonly maxAttempts?: number;
  /** The NSQ message id (default: a new random one each run). */
  readonly id?: string;
  /** The entry's `timeout` in milliseconds (default 60 000): `ctx.signal` aborts then. */
  readonly timeoutMs?: number;
  /**
   * The dedupe store (default: a new memory store each run). Share one,
   * made by {@linkcode dedupeStore}, between runs to see `duplicate` (a key
   * already done) and `busy` (a key claimed by a run still going).
   */
  readonly store?: DedupeStore;
  /** `ctx.topic` (default `"test"`). */
  readonly topic?: string;
  /** `ctx.channel` (default `"test"`). */
  readonly channel?: string;
  /**
   * The module whose default export is `worker`: runs it in a child
   * process, as an entry with `processes: 1` does (its `setup()` and
   * `teardown()` run there around the message, `ctx.publish*` come back to
   * the kit). The child gets the permissions granted to the whole test.
   */
  readonly child?: URL;
  /** With `child`: how long the handler may run on after its timeout before the child is killed (default 5 000). */
  readonly killGraceMs?: number;
}
