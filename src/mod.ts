/**
 * The one module that worker modules import.
 *
 * @example
 * ```ts
 * // workers/demo/pageview.ts
 * import { defineWorker } from "../../src/mod.ts";
 *
 * export default defineWorker<{ clicks: number }>({
 *   handle(body, ctx) {
 *     ctx.log.info("pageview", { clicks: body.clicks });
 *   },
 * });
 * ```
 *
 * @module
 */

export { defineWorker } from "./worker/worker.ts";
export type {
  BatchContext,
  BatchDefaults,
  BatchItem,
  BatchResult,
  Decode,
  Logger,
  Message,
  PublishBody,
  Publisher,
  SetupContext,
  WorkerContext,
  WorkerDefinition,
  WorkerOptions,
} from "./worker/worker.ts";
export { PermanentError } from "./worker/permanent_error.ts";
export type {
  InferSchemaOutput,
  StandardSchemaIssue,
  StandardSchemaV1,
} from "./worker/standard_schema.ts";
