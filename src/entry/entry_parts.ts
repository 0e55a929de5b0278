/**
 * The parts of one running entry, built and wired together: its tracer,
 * child processes, message path, consumer, breaker and the hand-off of each
 * delivery between them.
 *
 * @module
 */

import type { EntryContext } from "../context/entry_context.ts";
import type { EntryStats } from "../observe/entry_stats.ts";
import { Consumer } from "../nsq/consumer.ts";
import { OutcomeExecutor } from "./outcome_executor.ts";
import { EntryTracer } from "./tracing/entry_tracer.ts";
import { TRACING_ON } from "../observe/tracing_switch.ts";
import { BatchStats } from "../observe/batch_stats.ts";
import type { DeadLetterRing } from "../observe/dead_letter_ring.ts";
import { type BoardEntry, StallBoard } from "../observe/stall_board.ts";
import { isLogged } from "../observe/log.ts";
import type { Batcher, BatchReport } from "../batch/batcher.ts";
import { createMessagePath } from "./message_path.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import { ChildPool } from "../child/child_pool.ts";
import { currentChildProgram } from "../child/child_program.ts";
import { LOG_LEVELS } from "../child/protocol.ts";
import { WORKERS_DIR } from "../worker/worker_loader.ts";
import { BreakerGuard } from "./breaker_guard.ts";
import { sharedRate } from "./shared_rate.ts";
import type { RedisRateBucket } from "../dedupe/redis_rate_bucket.ts";
import { MessageHandoff } from "./message_handoff.ts";
import type { RunningEntryOptions } from "./running_entry_options.ts";

/** What the running entry that owns the parts gives them. */
export interface EntryOwner {
  /** The entry's figures, counted by its tracer and its outcome executor. */
  readonly stats: EntryStats;
  /** Where the outcome executor keeps the dead letters it writes. */
  readonly deadLetters: DeadLetterRing;
  /** Aborted by a forced shutdown: the handlers still running are interrupted. */
  readonly stop: AbortSignal;
  /** Told of every batch that ended. */
  readonly onBatch: (report: BatchReport) => void;
  /** Told each time a delivery has been answered. */
  readonly onAnswered: () => void;
}

/** One entry's parts, as its life (setup, running, drain, teardown) uses them. */
export interface EntryParts {
  /** This entry on the stall watchdog's board. */
  readonly board: BoardEntry;
  /** The child processes that run the worker; null with `processes: 0`. */
  readonly children: ChildPool | null;
  /** The `ctx` of `setup()` and `teardown()`. */
  readonly context: EntryContext;
  /** Where the worker's code runs. */
  readonly code: WorkerCode;
  /** Empty unless the worker has `handleBatch`. */
  readonly batchers: readonly Batcher[];
  /** The batch figures; null unless the worker has `handleBatch`. */
  readonly batchStats: BatchStats | null;
  /** The rate kept with the entry's other processes; null unless `rate_limit` is shared. */
  readonly sharedRate: RedisRateBucket | null;
  /** Hands every delivery to the entry's {@linkcode MessageHandoff}. */
  readonly consumer: Consumer;
  /** Null unless the entry has a `breaker`. */
  readonly breaker: BreakerGuard | null;
}

/**
 * Builds the parts of the entry of `options`; nothing connects or runs
 * until its owner starts them.
 *
 * @example
 * ```ts
 * import { buildEntryParts, type EntryOwner } from "./entry_parts.ts";
 * import type { RunningEntryOptions } from "./running_entry_options.ts";
 *
 * declare const options: RunningEntryOptions;
 * declare const owner: EntryOwner;
 * const { consumer } = buildEntryParts(options, owner);
 * ```
 */
export function buildEntryParts(options: RunningEntryOptions, owner: EntryOwner): EntryParts {
  const { entry, worker, publisher } = options;
  const board = (options.board ?? new StallBoard()).entry({
    topic: entry.topic,
    channel: entry.channel,
    worker: entry.worker,
  });
  const tracer = TRACING_ON
    ? new EntryTracer({
      topic: entry.topic,
      nsqTopic: entry.nsqTopic,
      channel: entry.channel,
      worker: worker.name,
      traceField: entry.traceField,
      onInvalidTraceParent: () => owner.stats.invalidTraceParents++,
      publisher,
    })
    : null;
  const children = entry.processes === 0 ? null : new ChildPool({
    processes: entry.processes,
    program: options.childProgram ?? currentChildProgram(WORKERS_DIR),
    init: {
      worker: worker.name,
      options: entry.options,
      topic: entry.topic,
      channel: entry.channel,
      logLevel: LOG_LEVELS.find((level) => isLogged(level)) ?? "error",
    },
    timeoutMs: entry.timeoutMs,
    killGraceMs: entry.killGraceMs,
    memoryLimitMib: entry.memoryLimitMib,
    log: options.log,
  });
  const executor = new OutcomeExecutor({
    entry,
    stats: owner.stats,
    log: options.log,
    publisher,
    tracer,
    deadLetters: owner.deadLetters,
  });
  const path = createMessagePath({
    entry,
    worker,
    store: options.store,
    publisher,
    log: options.log,
    tracer,
    onBatch: owner.onBatch,
    ...(children === null ? {} : { code: children }),
  });
  const batchStats = path.batch && new BatchStats(path.batch.size, path.batch.waitMs);
  const rate = sharedRate(entry, options.store, options.log);
  const consumer = new Consumer({
    topic: entry.nsqTopic,
    channel: entry.channel,
    maxInFlight: entry.maxInFlight,
    rateLimit: entry.rateLimit,
    ...(rate === null ? {} : { rateBucket: rate }),
    nsqdAddresses: options.nsqdAddresses,
    lookupdUrls: options.lookupdUrls,
    connection: options.connection,
    log: options.log,
    // Messages come only once the consumer has started: by then the hand-off exists.
    onMessage: (message) => handoff.receive(message),
    ...(options.timings ? { timings: options.timings } : {}),
  });
  const breaker = entry.breaker && new BreakerGuard({
    settings: entry.breaker,
    requeue: entry,
    consumer,
    log: options.log,
  });
  const handoff = new MessageHandoff({
    requeue: entry,
    runner: path.runner,
    executor,
    tracer,
    breaker,
    board,
    stop: owner.stop,
    log: options.log,
    onAnswered: owner.onAnswered,
  });
  return {
    board,
    children,
    context: path.context,
    code: path.code,
    batchers: path.batchers,
    batchStats,
    sharedRate: rate,
    consumer,
    breaker,
  };
}
