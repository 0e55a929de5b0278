/**
 * What a child's messages and batches run with, once its worker has loaded.
 *
 * @module
 */

import type { EntryContext } from "../context/entry_context.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import type { ChildOutbox } from "./child_outbox.ts";
import type { ContextForwarder } from "./context_forwarder.ts";

/** The loaded worker of a child, its entry's `ctx`, and where frames and `ctx` calls go. */
export interface ChildWorker {
  readonly code: WorkerCode;
  readonly context: EntryContext;
  readonly out: ChildOutbox;
  readonly forwarder: ContextForwarder;
}
