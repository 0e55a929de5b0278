/**
 * The `ctx` a worker's `handleBatch()` receives.
 *
 * @module
 */

import { EntryContext } from "./entry_context.ts";
import type { BatchContext as WorkerBatchContext } from "../worker/worker.ts";

/** A batch's `ctx`: the entry's context plus the batch's signal and `touch` of every item. */
export class BatchContext extends EntryContext implements WorkerBatchContext {
  readonly signal: AbortSignal;
  readonly #touch: () => void;

  constructor(base: EntryContext, touch: () => void, signal: AbortSignal) {
    super(base);
    this.signal = signal;
    this.#touch = touch;
  }

  touch(): void {
    this.#touch();
  }
}
