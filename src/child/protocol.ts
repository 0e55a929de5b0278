/**
 * What the daemon and a child process say to each other over the frames of
 * `frames.ts`: each frame's type and the order of its fields.
 *
 * The daemon asks; the child answers each request by its id:
 *
 * | daemon → child | fields | child → daemon |
 * |---|---|---|
 * | `INIT` | JSON {@linkcode ChildInit} | `READY` or `SETUP_FAILED` (error) |
 * | `CHECK` | id, attempts, timestamp, message id, body | `CHECKED` id, status, … |
 * | `HANDLE` | id (of a checked message) | `SETTLED` id, state, error |
 * | `BATCH` | batch id, count, ids | `BATCH_SETTLED` batch id, state, results |
 * | `DROP` | id: forget a checked message | — |
 * | `ABORT` | id, reason: abort its `ctx.signal` | — |
 * | `TEARDOWN` | — | `TORN_DOWN` (error or ""), then the child exits |
 *
 * The child calls the daemon for `ctx.publish*` (`CALL`, answered by
 * `REPLY`), and tells it of `ctx.touch()` (`TOUCH`), of `ctx.log` records
 * (`LOG`), of its resident memory (`USAGE`, every second) and of an
 * uncaught error that ends it (`FATAL`).
 *
 * @module
 */

import type { DeadReason } from "../runner/outcome.ts";
import type { LogLevel } from "../config/types.ts";

/** Frame types. */
export const FRAME = {
  INIT: 1,
  CHECK: 2,
  HANDLE: 3,
  DROP: 4,
  ABORT: 5,
  BATCH: 6,
  REPLY: 7,
  TEARDOWN: 8,
  READY: 20,
  SETUP_FAILED: 21,
  CHECKED: 22,
  SETTLED: 23,
  BATCH_SETTLED: 24,
  CALL: 25,
  TOUCH: 26,
  LOG: 27,
  TORN_DOWN: 28,
  FATAL: 29,
  USAGE: 30,
} as const;

/** What `INIT` tells a child: the entry's worker, as the daemon loaded it. */
export interface ChildInit {
  readonly worker: string;
  /** The entry's `options` (the child merges them over the worker's own defaults). */
  readonly options: Record<string, unknown>;
  readonly topic: string;
  readonly channel: string;
  /** Records below this level are not sent. */
  readonly logLevel: LogLevel;
}

/** `CHECKED` status: the key is the message id. */
export const KEY_DEFAULT = 0;
/** `CHECKED` status: no dedupe for this message. */
export const KEY_NONE = 1;
/** `CHECKED` status: the worker's own key follows. */
export const KEY_CUSTOM = 2;
/** `CHECKED` status: dead; the reason's index in {@linkcode DEAD_REASONS} and the error follow. */
export const CHECK_DEAD = 3;

/** The dead reasons a check can give, by index. */
export const DEAD_REASONS: readonly DeadReason[] = [
  "max_attempts",
  "permanent",
  "decode",
  "validate",
  "dedupe_key",
];

/** `SETTLED`/`BATCH_SETTLED` state: returned. */
export const RETURNED = 0;
/** `SETTLED`/`BATCH_SETTLED` state: threw; the error's description follows. */
export const THREW = 1;
/** `SETTLED`/`BATCH_SETTLED` state: threw a `PermanentError`; its message follows. */
export const THREW_PERMANENT = 2;

/** What a returning `handleBatch` gave: nothing, one result per item, or something else. */
export const BATCH_NOTHING = 0;
export const BATCH_RESULTS = 1;
export const BATCH_OTHER = 2;

/** One result of `handleBatch`: `undefined`, `"finish"`, an `Error`, a `PermanentError`, or other. */
export const RESULT_UNDEFINED = 0;
export const RESULT_FINISH = 1;
export const RESULT_ERROR = 2;
export const RESULT_PERMANENT = 3;
export const RESULT_OTHER = 4;

/** Whose `ctx` a `CALL`, `TOUCH` or `LOG` comes from. */
export const OWNER_ENTRY = 0;
export const OWNER_MESSAGE = 1;
export const OWNER_BATCH = 2;

/** `CALL` methods. */
export const PUBLISH = 0;
export const PUBLISH_MANY = 1;
export const PUBLISH_DEFERRED = 2;

/** How a published body travels: bytes as they are, a string, or a value as JSON text. */
export const BODY_BYTES = 0;
export const BODY_STRING = 1;
export const BODY_JSON = 2;

/** Log levels by index. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error"];

/** `ABORT` reasons: the handler's timeout, or a forced shutdown. */
export const ABORT_TIMEOUT = 0;
export const ABORT_STOP = 1;
