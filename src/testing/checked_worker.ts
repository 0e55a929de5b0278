/**
 * A worker as the kit runs it: through the shape and option checks of
 * `check`, with the entry's options merged over its defaults.
 *
 * @module
 */

import type { SourceLocation } from "../config/types.ts";
import { type LoadedWorker, loadWorkers, WorkerLoadError } from "../worker/worker_loader.ts";
import type { WorkerDefinition, WorkerOptions } from "../worker/worker.ts";

const TEST_FILE: SourceLocation = { file: "runWorker", line: 1, col: 1 };
const WORKER_NAME = "test/worker";

/** The worker after the shape and option checks of `check`, with its options merged. */
export async function checkedWorker(
  worker: WorkerDefinition,
  entryOptions: Readonly<WorkerOptions>,
): Promise<LoadedWorker> {
  const { workers, issues } = await loadWorkers(
    [{ index: 0, name: WORKER_NAME, location: TEST_FILE, options: entryOptions }],
    {},
    () => Promise.resolve(worker),
  );
  const loaded = workers.get(0);
  if (loaded === undefined) {
    throw new WorkerLoadError(issues.map((issue) => issue.message).join("\n"));
  }
  return loaded;
}
