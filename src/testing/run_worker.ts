/**
 * {@linkcode runWorker}: one message through a worker as the daemon would
 * run it, in this process or in a child.
 *
 * @module
 */

import type { WorkerDefinition, WorkerOptions } from "../worker/worker.ts";
import { checkedWorker } from "./checked_worker.ts";
import { kitMessage, randomId } from "./kit_message.ts";
import { type LogRecord, recordingLogger } from "./recording_logger.ts";
import type { PublishedMessage } from "./recording_publisher.ts";
import type { RunWorkerOptions } from "./run_worker_options.ts";
import { testChildPool } from "./test_child_pool.ts";
import { testEntry } from "./test_entry.ts";
import { type TestOutcome, testOutcome } from "./test_outcome.ts";

/** What {@linkcode runWorker} resolves to. */
export interface RunResult {
  readonly outcome: TestOutcome;
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/**
 * Runs `body` through `worker` as the daemon would: `body` may be a string
 * or bytes (the raw message body) or any other value (published as JSON).
 * `ctx.publish*` are recorded instead of sent (refused as nsqd would refuse
 * them), `ctx.log` is captured, and `ctx.signal` aborts when the timeout
 * passes. Rejects with a `WorkerLoadError` for a worker `check` would refuse.
 *
 * @example
 * ```ts ignore
 * import { dedupeStore, runWorker } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview.ts";
 *
 * const store = dedupeStore();
 * await runWorker(worker, { event_id: "e1", clicks: 1 }, { store }); // finish
 * await runWorker(worker, { event_id: "e1", clicks: 1 }, { store }); // duplicate
 * ```
 */
export async function runWorker<T, O extends WorkerOptions>(
  worker: WorkerDefinition<T, O>,
  body: unknown,
  options: RunWorkerOptions<O> = {},
): Promise<RunResult> {
  const loaded = await checkedWorker(worker as WorkerDefinition, options.options ?? {});
  if (loaded.definition.handle === undefined) {
    throw new TypeError("runWorker needs a worker with handle(); test handleBatch with runBatch");
  }
  const logs: LogRecord[] = [];
  const pool = options.child === undefined ? null : await testChildPool(
    worker as WorkerDefinition,
    options.child,
    options,
    recordingLogger(logs),
  );
  const kit = testEntry(loaded, options, null, pool === null ? {} : { code: pool }, logs);
  await pool?.setup(kit.path.context);
  try {
    const outcome = await kit.path.runner.run(kitMessage(body, options, options.id ?? randomId()));
    return { outcome: testOutcome(outcome), published: kit.published, logs: kit.logs };
  } finally {
    await pool?.teardown();
  }
}
