/**
 * Batches in a child process: held messages handed together to the
 * worker's `handleBatch` with the daemon's own batch `ctx`, what it returned
 * (or threw) sent back for the daemon's batcher to read.
 *
 * @module
 */

import { BatchContext } from "../context/batch_context.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { BatchItem } from "../worker/worker.ts";
import type { FrameReader } from "./frames.ts";
import { writeBatchReturn, writeSettled } from "./payloads.ts";
import type { ChildMessages } from "./child_messages.ts";
import type { ChildWorker } from "./child_worker.ts";
import { FRAME, OWNER_BATCH } from "./protocol.ts";

/** The batches a child runs. */
export class ChildBatches {
  readonly #worker: ChildWorker;
  readonly #messages: ChildMessages;
  readonly #running = new Map<number, AbortController>();

  /** Runs batches of `worker` on the messages `messages` holds. */
  constructor(worker: ChildWorker, messages: ChildMessages) {
    this.#worker = worker;
    this.#messages = messages;
  }

  /** Runs `handleBatch` on the held messages a `BATCH` frame names; answers `BATCH_SETTLED`. */
  batch(frame: FrameReader): void {
    const batchId = frame.u32();
    const count = frame.u32();
    const items: BatchItem[] = [];
    for (let i = 0; i < count; i++) {
      const held = this.#messages.take(frame.u32());
      if (held !== undefined) items.push({ body: held.body, message: held.message });
    }
    const controller = new AbortController();
    this.#running.set(batchId, controller);
    const base = this.#worker.forwarder.entryContext(
      this.#worker.context.options,
      OWNER_BATCH,
      batchId,
    );
    const ctx = new BatchContext(
      base,
      () => this.#worker.forwarder.touch(OWNER_BATCH, batchId),
      controller.signal,
    );
    let returned: unknown;
    try {
      returned = this.#worker.code.handleBatch(items, ctx);
    } catch (error) {
      return this.#batchSettled(batchId, false, error);
    }
    if (!isPromiseLike(returned)) return this.#batchSettled(batchId, true, returned);
    Promise.resolve(returned).then(
      (value) => this.#batchSettled(batchId, true, value),
      (error) => this.#batchSettled(batchId, false, error),
    );
  }

  /** Aborts the running batch `id`, if it still runs. */
  abort(id: number, reason: DOMException): void {
    this.#running.get(id)?.abort(reason);
  }

  /** What `handleBatch` returned (or threw), as the daemon's batcher reads it. */
  #batchSettled(batchId: number, returned: boolean, value: unknown): void {
    this.#running.delete(batchId);
    const out = this.#worker.out.begin(FRAME.BATCH_SETTLED).u32(batchId);
    writeSettled(out, returned, value);
    if (returned) writeBatchReturn(out, value);
    this.#worker.out.end();
  }
}
