/**
 * A worker whose `handle` records what it throws on its delivery's span.
 *
 * @module
 */

import { trace } from "@opentelemetry/api";
import { isPromiseLike } from "../../is_promise_like.ts";
import type { WorkerDefinition } from "../../worker/worker.ts";
import { exceptionOf } from "./exception_of.ts";

type Handle = NonNullable<WorkerDefinition["handle"]>;

/**
 * The worker with its `handle` recording what it throws or rejects with as
 * an exception event on the delivery's span.
 */
export function tracedWorker(definition: WorkerDefinition): WorkerDefinition {
  const handle = definition.handle;
  // A batch worker's errors go on its batch's span (see batch_tracing.ts).
  if (handle === undefined) return definition;
  const traced: Handle = function (this: unknown, body, ctx) {
    let result: unknown;
    try {
      result = handle.call(this, body, ctx);
    } catch (error) {
      recordException(error);
      throw error;
    }
    if (isPromiseLike(result)) return Promise.resolve(result).then(ignore, rethrowRecorded);
    return result as ReturnType<Handle>;
  };
  return { ...definition, handle: traced };
}

function ignore(): void {}

function recordException(error: unknown): void {
  trace.getActiveSpan()?.recordException(exceptionOf(error));
}

function rethrowRecorded(error: unknown): never {
  recordException(error);
  throw error;
}
