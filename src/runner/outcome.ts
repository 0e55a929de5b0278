/**
 * What the task runner decided for a message; the consumer carries it out.
 *
 * @module
 */

/** Why a message was dead-lettered. */
export type DeadReason = "max_attempts" | "permanent" | "decode" | "validate" | "dedupe_key";

/**
 * Set on an outcome when the dedupe store failed to answer the message's
 * claim (`dedupe.on_store_error`): with `bypassed` the handler ran without
 * dedupe (`process`), otherwise the message is requeued until the store
 * answers (`retry`).
 */
export interface StoreFailure {
  /** The store's error, described. */
  readonly error: string;
  readonly bypassed: boolean;
}

/**
 * The fate of one message:
 *
 * - `finish`: the handler returned → `FIN`.
 * - `duplicate`: its dedupe key was already done → `FIN`, handler not run.
 * - `busy`: its key is claimed by a running handler → `REQ delayMs`, handler not run.
 * - `retry`: the handler failed or timed out, or the dedupe store failed →
 *   `REQ delayMs`. `durationMs` is null when the handler did not run.
 * - `dead`: dead letter, then `FIN`. `durationMs` is null when the handler did not run.
 * - `interrupted`: shutdown aborted the handler → `REQ 0`; not a failure.
 *
 * `delayMs` is always a whole number of milliseconds. `storeFailure` is set
 * when the dedupe store failed on the claim (see {@linkcode StoreFailure}).
 */
export type Outcome =
  | {
    readonly kind: "finish";
    readonly durationMs: number;
    readonly storeFailure?: StoreFailure;
  }
  | { readonly kind: "duplicate" }
  | { readonly kind: "busy"; readonly delayMs: number }
  | {
    readonly kind: "retry";
    readonly delayMs: number;
    readonly error: string;
    readonly durationMs: number | null;
    readonly storeFailure?: StoreFailure;
  }
  | {
    readonly kind: "dead";
    readonly reason: DeadReason;
    readonly error: string;
    readonly durationMs: number | null;
    readonly storeFailure?: StoreFailure;
  }
  | {
    readonly kind: "interrupted";
    readonly durationMs: number;
    readonly storeFailure?: StoreFailure;
  };

/** Every {@linkcode Outcome} kind, e.g. to create one counter per kind up front. */
export const OUTCOME_KINDS = [
  "finish",
  "duplicate",
  "busy",
  "retry",
  "dead",
  "interrupted",
] as const satisfies readonly Outcome["kind"][];

/** Every {@linkcode DeadReason}. */
export const DEAD_REASONS = [
  "max_attempts",
  "permanent",
  "decode",
  "validate",
  "dedupe_key",
] as const satisfies readonly DeadReason[];

/** The longest `error` of an outcome: it goes into log lines and dead letters. */
export const MAX_ERROR_LENGTH = 1000;

/**
 * A short description of a thrown value for an outcome's `error`: the message
 * of an `Error` (prefixed with its name unless it is a plain `Error`), the
 * JSON or `String()` of anything else, cut at {@linkcode MAX_ERROR_LENGTH}.
 * It never throws, whatever was thrown.
 *
 * @example
 * ```ts
 * import { describeError } from "./outcome.ts";
 *
 * describeError(new Error("boom")); // "boom"
 * describeError(new TypeError("x is undefined")); // "TypeError: x is undefined"
 * describeError({ code: 42 }); // '{"code":42}'
 * ```
 */
export function describeError(error: unknown): string {
  let text: string;
  try {
    if (error instanceof Error) {
      const message = String(error.message);
      const name = String(error.name);
      if (name === "Error" || name === "") text = message || "Error";
      else text = message ? `${name}: ${message}` : name;
    } else if (typeof error === "object" && error !== null) {
      text = toJson(error) ?? String(error);
    } else {
      text = String(error);
    }
  } catch {
    text = "(an error that cannot be turned into text)";
  }
  return truncate(text);
}

function toJson(value: object): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined; // a cycle or a BigInt: String() will do
  }
}

/** Cuts `text` to {@linkcode MAX_ERROR_LENGTH} characters, marking the cut. */
export function truncate(text: string): string {
  return text.length <= MAX_ERROR_LENGTH ? text : text.slice(0, MAX_ERROR_LENGTH - 1) + "…";
}
