/**
 * What carries one entry's messages to its worker: the entry's `ctx`, its
 * task runner and, for a worker with `handleBatch`, its batcher. A running
 * entry and the test kit (`src/testing.ts`) both build it here, so a worker
 * meets in a test the path it meets in the daemon.
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import { EntryContext, type EntryPublisher } from "../context/entry_context.ts";
import { MessageContext } from "../context/message_context.ts";
import { BatchContext } from "../context/batch_context.ts";
import { type BatchSettings, batchSettings } from "../batch/batch_settings.ts";
import { Batcher, type BatchReport } from "../batch/batcher.ts";
import { type Attempt, type TaskMessage, TaskRunner } from "../runner/task_runner.ts";
import type { EntryTracer } from "./tracing/entry_tracer.ts";
import { localWorkerCode } from "../runner/local_worker_code.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import type { Logger } from "../worker/worker.ts";
import { entryKeyGate } from "./entry_key_gate.ts";

/** The settings of an entry that its message path reads (a config `Entry` has them all). */
export type MessagePathEntry =
  & Pick<
    Entry,
    | "topic"
    | "nsqTopic"
    | "channel"
    | "maxAttempts"
    | "requeueDelayMs"
    | "maxRequeueDelayMs"
    | "timeoutMs"
    | "maxInFlight"
    | "batch"
  >
  & Partial<Pick<Entry, "keyConcurrency">>;

/** What {@linkcode createMessagePath} builds from. */
export interface MessagePathOptions {
  readonly entry: MessagePathEntry;
  readonly worker: LoadedWorker;
  readonly store: DedupeStore;
  /** Where `ctx.publish` goes. */
  readonly publisher: EntryPublisher;
  /** The entry's logger: `ctx.log`, and where a batch worker's bugs are reported. */
  readonly log: Logger;
  /** Traces handlers, batches and publishes; null when tracing is off. */
  readonly tracer: EntryTracer | null;
  /** Told of every batch that ended. */
  readonly onBatch?: (report: BatchReport) => void;
  /** Told of each message once it has joined a batch. */
  readonly onJoin?: (attempt: Attempt) => void;
  /** Where the worker's code runs; by default its own functions, in this thread. */
  readonly code?: WorkerCode;
}

/** One entry's message path. */
export interface MessagePath {
  /** The `ctx` of `setup()` and `teardown()`, and the base of every handler's. */
  readonly context: EntryContext;
  readonly runner: TaskRunner;
  /** Where the worker's code runs: setup and teardown go through it too. */
  readonly code: WorkerCode;
  /**
   * One per slot of the code (a child process's bodies are batched
   * together); empty unless the worker has `handleBatch`.
   */
  readonly batchers: readonly Batcher[];
  /** The batch size and wait; null unless the worker has `handleBatch`. */
  readonly batch: BatchSettings | null;
}

/**
 * Builds an entry's message path: `runner.run(message)` takes a delivery
 * through decode, validation, dedupe and the handler (or its batch) to its
 * outcome.
 *
 * @example
 * ```ts
 * import { createMessagePath } from "./message_path.ts";
 * import type { MessagePathOptions } from "./message_path.ts";
 *
 * declare const options: MessagePathOptions;
 * const { runner } = createMessagePath(options);
 * ```
 */
export function createMessagePath(options: MessagePathOptions): MessagePath {
  const { entry, worker, store, publisher, log, tracer } = options;
  const context = new EntryContext({
    topic: entry.topic,
    channel: entry.channel,
    worker: worker.name,
    options: worker.options,
    log,
    publisher: tracer?.publisher() ?? publisher,
  });
  // An unsampled delivery publishes through a publisher that hands its trace on.
  const publisherOf = tracer === null
    ? undefined
    : (message: TaskMessage) => tracer.publisherOf(message);
  const batch = batchSettings(entry, worker.definition);
  const onJoin = options.onJoin;
  const code = options.code ?? localWorkerCode(worker.definition);
  const batchers: Batcher[] = [];
  const gate = entryKeyGate(entry, worker.definition, store, log);
  const runner = new TaskRunner({
    worker: worker.definition,
    code: tracer === null ? code : tracedHandle(code, tracer),
    scope: `${entry.nsqTopic}/${entry.channel}`,
    settings: entry,
    store,
    context: (task, signal) => new MessageContext(context, task, signal, publisherOf),
    ...(gate === null ? {} : { gate }),
    ...(batch === null ? {} : {
      join: (attempt: Attempt) => {
        const outcome = batchers[code.slot(attempt.body)]!.join(attempt);
        onJoin?.(attempt);
        return outcome;
      },
    }),
  });
  for (let slot = 0; batch !== null && slot < code.slots; slot++) {
    batchers.push(
      new Batcher({
        handleBatch: (items, ctx) => code.handleBatch(items, ctx),
        size: batch.size,
        waitMs: batch.waitMs,
        timeoutMs: entry.timeoutMs,
        store,
        settle: (attempt, state, error, durationMs) =>
          runner.settle(attempt, state, error, durationMs),
        context: (touch, signal) => new BatchContext(context, touch, signal),
        onBatch: options.onBatch ?? (() => {}),
        log,
        tracing: tracer?.batches() ?? null,
      }),
    );
  }
  return { context, runner, code, batchers, batch };
}

/** `code` with its handler's errors recorded on the delivery's span. */
function tracedHandle(code: WorkerCode, tracer: EntryTracer): WorkerCode {
  const handle = tracer.worker({ handle: (body, ctx) => code.handle(body, ctx) as void }).handle!;
  return {
    check: (message) => code.check(message),
    handle,
    drop: (body) => code.drop(body),
    handleBatch: (items, ctx) => code.handleBatch(items, ctx),
    slots: code.slots,
    slot: (body) => code.slot(body),
    setup: (ctx) => code.setup(ctx),
    teardown: (ctx) => code.teardown(ctx),
  };
}
