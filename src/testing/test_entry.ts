/**
 * One entry of the kit: the message path the daemon would build for a
 * worker, publishing and logging into memory.
 *
 * @module
 */

import type { BatchConfig } from "../config/types.ts";
import {
  createMessagePath,
  type MessagePath,
  type MessagePathOptions,
} from "../entry/message_path.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import { dedupeStore } from "./dedupe_store.ts";
import { type LogRecord, recordingLogger } from "./recording_logger.ts";
import { type PublishedMessage, recordingPublisher } from "./recording_publisher.ts";
import type { RunWorkerOptions } from "./run_worker_options.ts";
import { settingDefault } from "./setting_default.ts";

/** One entry of the kit: its message path, and what it published and logged. */
export interface TestEntry {
  readonly path: MessagePath;
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/**
 * The message path the daemon would build for `loaded` (with the entry
 * settings of `options`, the defaults otherwise), publishing and logging into
 * memory.
 */
export function testEntry(
  loaded: LoadedWorker,
  options: RunWorkerOptions,
  batch: BatchConfig | null = null,
  hooks: Pick<MessagePathOptions, "onBatch" | "onJoin" | "code"> = {},
  logs: LogRecord[] = [],
): TestEntry {
  const published: PublishedMessage[] = [];
  const topic = options.topic ?? "test";
  const path = createMessagePath({
    entry: {
      topic,
      nsqTopic: topic,
      channel: options.channel ?? "test",
      maxAttempts: options.maxAttempts ?? settingDefault("max_attempts"),
      requeueDelayMs: settingDefault("requeue_delay"),
      maxRequeueDelayMs: settingDefault("max_requeue_delay"),
      timeoutMs: options.timeoutMs ?? settingDefault("timeout"),
      maxInFlight: settingDefault("max_in_flight"),
      batch,
    },
    worker: loaded,
    store: options.store ?? dedupeStore(),
    publisher: recordingPublisher(published),
    log: recordingLogger(logs),
    tracer: null,
    ...hooks,
  });
  return { path, published, logs };
}
