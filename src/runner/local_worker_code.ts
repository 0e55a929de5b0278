/**
 * A worker's code run in this thread: the daemon's path for an entry with
 * `processes: 0`, and what a child process runs for its entry.
 *
 * @module
 */

import { isPromiseLike } from "../is_promise_like.ts";
import { describeError, truncate } from "../error_text.ts";
import type { Message, WorkerDefinition } from "../worker/worker.ts";
import { checkWithSchema } from "../worker/standard_schema.ts";
import { decodeBody, DecodeError } from "./decode.ts";
import type { DeadReason } from "./outcome.ts";
import type { CheckResult, WorkerCode } from "./worker_code.ts";

function ignore(): void {}

/**
 * `definition`'s functions, called directly: checks that need no promise
 * complete in the same turn.
 *
 * @example
 * ```ts
 * import { localWorkerCode } from "./local_worker_code.ts";
 *
 * const code = localWorkerCode({ decode: "text", handle: () => {} });
 * const checked = code.check({
 *   id: "0a1b2c3d4e5f6789",
 *   attempts: 1,
 *   timestamp: Date.now(),
 *   body: new TextEncoder().encode("hello"),
 * });
 * ```
 */
export function localWorkerCode(definition: WorkerDefinition): WorkerCode {
  return {
    check: (message) => check(definition, message),
    handle: (body, ctx) => definition.handle!(body, ctx),
    drop: ignore,
    handleBatch: (items, ctx) => definition.handleBatch!(items, ctx),
    slots: 1,
    slot: () => 0,
    setup: (ctx) => definition.setup?.(ctx),
    teardown: (ctx) => definition.teardown?.(ctx),
  };
}

/** Decode → schema or validate → dedupe key, each failure a dead outcome with its reason. */
function check(worker: WorkerDefinition, message: Message): CheckResult | Promise<CheckResult> {
  let body: unknown;
  try {
    body = decodeBody(worker.decode, message.body);
  } catch (error) {
    return dead(
      "decode",
      error instanceof DecodeError ? truncate(error.message) : describeError(error),
    );
  }
  if (worker.schema !== undefined) {
    const checked = checkWithSchema(worker.schema, body);
    if (checked instanceof Promise) {
      return checked.then((checked) =>
        checked.ok ? keyed(worker, message, checked.value) : dead("validate", checked.error)
      );
    }
    if (!checked.ok) return dead("validate", checked.error);
    body = checked.value;
  } else if (worker.validate !== undefined) {
    let valid: unknown;
    try {
      valid = worker.validate(body, message);
    } catch (error) {
      return dead("validate", `validate threw: ${describeError(error)}`);
    }
    if (isPromiseLike(valid)) {
      Promise.resolve(valid).catch(ignore);
      return dead("validate", "validate returned a Promise; it must be synchronous");
    }
    if (!valid) return dead("validate", `validate returned ${String(valid)}`);
  }
  return keyed(worker, message, body);
}

/** The dedupe key of a body that passed the worker's checks. */
function keyed(worker: WorkerDefinition, message: Message, body: unknown): CheckResult {
  if (worker.dedupeKey === undefined) return { kind: "checked", body, key: undefined };
  let custom: unknown;
  try {
    custom = worker.dedupeKey(body, message);
  } catch (error) {
    return dead("dedupe_key", `dedupeKey threw: ${describeError(error)}`);
  }
  if (typeof custom === "string" || typeof custom === "number" || typeof custom === "bigint") {
    return { kind: "checked", body, key: String(custom) };
  }
  if (custom === null || custom === undefined) return { kind: "checked", body, key: custom };
  // String() of an object or a Promise is the same for every message: all but one would be duplicates.
  if (isPromiseLike(custom)) Promise.resolve(custom).catch(ignore);
  return dead(
    "dedupe_key",
    `dedupeKey must return a string, a number, null or undefined, got ${
      isPromiseLike(custom) ? "a Promise" : typeof custom
    }`,
  );
}

function dead(reason: DeadReason, error: string): CheckResult {
  return { kind: "dead", reason, error, durationMs: null };
}
