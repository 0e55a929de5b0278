/**
 * What the task runner decided for a message; the consumer carries it out.
 *
 * @module
 */

/** Why a message was dead-lettered. */
export type DeadReason =
  | "max_attempts"
  | "permanent"
  | "decode"
  | "validate"
  | "dedupe_key"
  | "order_key";

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
