/**
 * The worker's checks of a message, before anything is claimed: its body
 * decoded, then validated (or parsed by its schema), then its dedupe key.
 * No store, no timers: what fails here is dead at once.
 *
 * @module
 */

import { isPromiseLike } from "../is_promise_like.ts";
import type { Message, WorkerDefinition } from "../worker/worker.ts";
import { checkWithSchema } from "../worker/standard_schema.ts";
import { describeError, truncate } from "../error_text.ts";
import { decodeBody, DecodeError } from "./decode.ts";
import type { DeadReason } from "./outcome.ts";

/** What the checks read of a message: the worker's {@linkcode Message} and the scope of its `id`. */
export interface CheckedMessage extends Message {
  /** The dedupe scope of the default key, `id` (see `TaskMessage.idScope`). */
  readonly idScope: string;
}

/**
 * What the checks made of a message: the body the handler gets and the
 * dedupe key in its scope (null: no dedupe), or why the message is dead.
 */
export type MessageCheck =
  | {
    readonly ok: true;
    readonly body: unknown;
    readonly scope: string;
    readonly key: string | null;
  }
  | {
    readonly ok: false;
    readonly reason: Extract<DeadReason, "decode" | "validate" | "dedupe_key">;
    readonly error: string;
  };

function ignore(): void {}

/**
 * Decodes `message`, validates its body (or parses it with the worker's
 * schema) and gives its dedupe key: the message's `id` in its `idScope`, or
 * the worker's `dedupeKey` in `entryScope`. A promise only when the schema
 * answers with one; it never rejects.
 *
 * @example
 * ```ts
 * import { checkMessage } from "./message_check.ts";
 *
 * const checked = checkMessage({ handle() {} }, {
 *   id: "0a1b2c3d4e5f6789",
 *   attempts: 1,
 *   timestamp: Date.now(),
 *   body: new TextEncoder().encode('{"clicks":3}'),
 *   idScope: "pageviews/counter@127.0.0.1:4150",
 * }, "pageviews/counter");
 * // { ok: true, body: { clicks: 3 }, scope: "pageviews/counter@127.0.0.1:4150", key: "0a1b2c3d4e5f6789" }
 * ```
 */
export function checkMessage(
  worker: WorkerDefinition,
  message: CheckedMessage,
  entryScope: string,
): MessageCheck | Promise<MessageCheck> {
  let body: unknown;
  try {
    body = decodeBody(worker.decode, message.body);
  } catch (error) {
    return failed(
      "decode",
      error instanceof DecodeError ? truncate(error.message) : describeError(error),
    );
  }

  if (worker.schema !== undefined) {
    const checked = checkWithSchema(worker.schema, body);
    if (checked instanceof Promise) {
      return checked.then((checked) =>
        checked.ok
          ? keyed(worker, message, checked.value, entryScope)
          : failed("validate", checked.error)
      );
    }
    if (!checked.ok) return failed("validate", checked.error);
    body = checked.value;
  } else if (worker.validate !== undefined) {
    let valid: unknown;
    try {
      valid = worker.validate(body, message);
    } catch (error) {
      return failed("validate", `validate threw: ${describeError(error)}`);
    }
    if (isPromiseLike(valid)) {
      Promise.resolve(valid).catch(ignore);
      return failed("validate", "validate returned a Promise; it must be synchronous");
    }
    if (!valid) return failed("validate", `validate returned ${String(valid)}`);
  }
  return keyed(worker, message, body, entryScope);
}

/** The dedupe key of a body that passed the worker's checks. */
function keyed(
  worker: WorkerDefinition,
  message: CheckedMessage,
  body: unknown,
  entryScope: string,
): MessageCheck {
  let key: string | null = message.id;
  let scope = message.idScope;
  if (worker.dedupeKey !== undefined) {
    let custom: unknown;
    try {
      custom = worker.dedupeKey(body, message);
    } catch (error) {
      return failed("dedupe_key", `dedupeKey threw: ${describeError(error)}`);
    }
    if (typeof custom === "string" || typeof custom === "number" || typeof custom === "bigint") {
      key = String(custom);
      scope = entryScope;
    } else if (custom === null) {
      key = null;
    } else if (custom !== undefined) {
      // String() of an object or a Promise is the same for every message: all but one would be duplicates.
      if (isPromiseLike(custom)) Promise.resolve(custom).catch(ignore);
      return failed(
        "dedupe_key",
        `dedupeKey must return a string, a number, null or undefined, got ${
          isPromiseLike(custom) ? "a Promise" : typeof custom
        }`,
      );
    }
  }
  return { ok: true, body, scope, key };
}

function failed(
  reason: Extract<DeadReason, "decode" | "validate" | "dedupe_key">,
  error: string,
): MessageCheck {
  return { ok: false, reason, error };
}
