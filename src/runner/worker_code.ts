/**
 * Where the task runner meets a worker's own code: its checks (decode,
 * schema or validate, dedupe key), its handler and its setup and teardown.
 * The runner decides every outcome, claim, deadline and touch; a
 * {@linkcode WorkerCode} only runs the worker's functions and says what they
 * did, in this thread ({@linkcode localWorkerCode}) or in a child process.
 *
 * @module
 */

import type { Outcome } from "./outcome.ts";
import type {
  BatchContext,
  BatchItem,
  BatchResult,
  Message,
  SetupContext,
  WorkerContext,
} from "../worker/worker.ts";

/** A message that passed its worker's checks: the handler's body and its dedupe key. */
export interface Checked {
  readonly kind: "checked";
  /**
   * What the handler gets; opaque to the runner, which hands it back to
   * {@linkcode WorkerCode.handle} or {@linkcode WorkerCode.drop}.
   */
  readonly body: unknown;
  /**
   * The worker's dedupe key: undefined for the default (the message id),
   * null for none.
   */
  readonly key: string | null | undefined;
}

/** What the checks made of a message: {@linkcode Checked}, or dead with the reason. */
export type CheckResult = Checked | Extract<Outcome, { kind: "dead" }>;

/** A worker's code as the runner, the batcher and the entry call it. */
export interface WorkerCode {
  /**
   * Decode → schema or validate → dedupe key. Never throws; a promise of it
   * rejects only with a {@linkcode import("./handler_lost.ts").HandlerLost}.
   */
  check(message: Message): CheckResult | Promise<CheckResult>;
  /** Runs the handler on a checked body: returns, throws or gives a promise, as `handle` does. */
  handle(body: unknown, ctx: WorkerContext): unknown;
  /** A checked body whose handler will not run (a duplicate, busy, a shutdown): let it go. */
  drop(body: unknown): void;
  /** Runs `handleBatch` on checked bodies; only for a worker that has it. */
  handleBatch(
    items: readonly BatchItem[],
    ctx: BatchContext,
  ): void | readonly BatchResult[] | Promise<void | readonly BatchResult[]>;
  /**
   * How many batchers the bodies are spread over: a batch is made of bodies
   * of one {@linkcode slot} (those of one child process).
   */
  readonly slots: number;
  /** The slot of a checked body, from 0 to `slots - 1`. */
  slot(body: unknown): number;
  /** The worker's `setup()`; a rejection keeps the entry from starting. */
  setup(ctx: SetupContext): void | Promise<void>;
  /** The worker's `teardown()`. */
  teardown(ctx: SetupContext): void | Promise<void>;
}
