/**
 * Testing a worker without nsqd: {@linkcode runWorker} runs one message
 * through the daemon's own task runner (decode → validate or schema → dedupe
 * key → claim → handle under its deadline → outcome) with the `ctx` the
 * daemon builds, and gives back the outcome, what the handler published and
 * what it logged. {@linkcode runBatch} does the same for a batch worker's
 * `handleBatch`, with the daemon's own batcher.
 *
 * @example
 * ```ts ignore
 * import { assertEquals } from "jsr:@std/assert";
 * import { runWorker } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview.ts";
 *
 * Deno.test("a page view is counted", async () => {
 *   const { outcome } = await runWorker(worker, { event_id: "e1", clicks: 2 });
 *   assertEquals(outcome, { kind: "finish" });
 * });
 * ```
 *
 * @module
 */

export type { DedupeStore } from "./dedupe/store.ts";
export { dedupeStore } from "./testing/dedupe_store.ts";
export type { RunWorkerOptions } from "./testing/run_worker_options.ts";
export type { TestOutcome } from "./testing/test_outcome.ts";
export type { PublishedMessage } from "./testing/recording_publisher.ts";
export type { LogRecord } from "./testing/recording_logger.ts";
export { type RunResult, runWorker } from "./testing/run_worker.ts";
export { runBatch, type RunBatchOptions, type RunBatchResult } from "./testing/run_batch.ts";
