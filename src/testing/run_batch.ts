/**
 * {@linkcode runBatch}: bodies through a batch worker as the daemon would
 * run them, with the daemon's own batcher.
 *
 * @module
 */

import type { TaskMessage } from "../runner/task_runner.ts";
import type { WorkerDefinition, WorkerOptions } from "../worker/worker.ts";
import { checkedWorker } from "./checked_worker.ts";
import { kitMessage, randomId } from "./kit_message.ts";
import type { LogRecord } from "./recording_logger.ts";
import type { PublishedMessage } from "./recording_publisher.ts";
import type { RunWorkerOptions } from "./run_worker_options.ts";
import { testEntry } from "./test_entry.ts";
import { type TestOutcome, testOutcome } from "./test_outcome.ts";

/** Options of {@linkcode runBatch}: those of {@linkcode runWorker}, for every body, and the batch's. */
export interface RunBatchOptions<O extends WorkerOptions = WorkerOptions>
  extends RunWorkerOptions<O> {
  /**
   * The entry's `batch:` over the worker's `batch` (`wait` in milliseconds);
   * without a size anywhere, `max_in_flight`'s default. The kit hands a
   * partial batch over once every body has joined, as if `wait` had passed.
   */
  readonly batch?: { readonly size?: number; readonly wait?: number };
}

/** What {@linkcode runBatch} resolves to. */
export interface RunBatchResult {
  /** One outcome per body, in the order of the bodies. */
  readonly outcomes: TestOutcome[];
  /** The size of each batch handed to `handleBatch`, in order; invalid or duplicate bodies are in none. */
  readonly batches: number[];
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/**
 * Runs `bodies` through a batch worker as the daemon would: each body on its
 * own through decode, validate or schema and the dedupe claim, then, in the
 * order they joined, in batches of the entry's size to `handleBatch` (the
 * daemon's batcher: per-item results, a throw, a wrong result, the
 * timeout), and gives each body's outcome. Bodies are as for
 * {@linkcode runWorker}; each gets a new message id.
 *
 * @example
 * ```ts ignore
 * import { assertEquals } from "jsr:@std/assert";
 * import { runBatch } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview_batch.ts";
 *
 * Deno.test("page views are stored in one batch", async () => {
 *   const { outcomes, batches } = await runBatch(worker, [
 *     { event_id: "e1", clicks: 2 },
 *     { event_id: "e2", clicks: 1 },
 *   ]);
 *   assertEquals(outcomes, [{ kind: "finish" }, { kind: "finish" }]);
 *   assertEquals(batches, [2]);
 * });
 * ```
 */
export async function runBatch<T, O extends WorkerOptions>(
  worker: WorkerDefinition<T, O>,
  bodies: readonly unknown[],
  options: RunBatchOptions<O> = {},
): Promise<RunBatchResult> {
  const loaded = await checkedWorker(worker as WorkerDefinition, options.options ?? {});
  if (loaded.definition.handleBatch === undefined) {
    throw new TypeError("runBatch needs a worker with handleBatch(); test handle with runWorker");
  }
  const messages = bodies.map((body) => kitMessage(body, options, randomId()));
  const batches: number[] = [];
  const { promise: allArrived, resolve: arrived } = Promise.withResolvers<void>();
  let pending = messages.length;
  const arrivedOne = () => {
    if (--pending === 0) arrived();
  };
  const joined = new Set<TaskMessage>();
  const batch = { size: options.batch?.size ?? null, wait: options.batch?.wait ?? null };
  const kit = testEntry(loaded, options, batch, {
    onBatch: (report) => batches.push(report.items),
    onJoin: (attempt) => {
      joined.add(attempt.message);
      arrivedOne();
    },
  });
  const { runner, batchers } = kit.path;
  const outcomes = messages.map(async (message) => {
    const outcome = runner.run(message);
    // A body that never joins a batch (invalid, duplicate, busy) has arrived once it has its outcome.
    if (!(outcome instanceof Promise)) {
      arrivedOne();
      return outcome;
    }
    return await outcome.finally(() => {
      if (!joined.has(message)) arrivedOne();
    });
  });
  if (messages.length === 0) arrived();
  await allArrived;
  // Every body has joined or left: the partial batch goes now, as its wait would have ended.
  for (const batcher of batchers) batcher.drain();
  return {
    outcomes: (await Promise.all(outcomes)).map(testOutcome),
    batches,
    published: kit.published,
    logs: kit.logs,
  };
}
