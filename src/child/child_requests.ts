/**
 * What the daemon has asked of one child and not yet had answered: its
 * checks, the messages it holds, its running handlers and batches. A
 * running one's abort is sent on, and `kill_grace` later its child is
 * killed if it has not settled; a check that hangs gets its child killed too.
 *
 * @module
 */

import type { Outcome } from "../runner/outcome.ts";
import type { CheckResult } from "../runner/worker_code.ts";
import type { BatchResult, Message, Publisher } from "../worker/worker.ts";
import type { FrameReader } from "./frames.ts";
import { readBatchReturn, readThrown } from "./payloads.ts";
import type { ChildProcess } from "./child_process.ts";
import {
  ABORT_STOP,
  ABORT_TIMEOUT,
  CHECK_DEAD,
  DEAD_REASONS,
  FRAME,
  KEY_CUSTOM,
  KEY_DEFAULT,
  OWNER_BATCH,
  OWNER_MESSAGE,
  RETURNED,
} from "./protocol.ts";

/** The `ctx` of a running handler or batch, as far as its child reaches it. */
export type RunningContext = Publisher & { touch(): void };

/** Options of {@linkcode ChildRequests}. */
export interface ChildRequestsOptions {
  readonly killGraceMs: number;
  /** A check (decode, validation, dedupe key) taking longer than this gets its child killed. */
  readonly checkLimitMs: number;
  /** Told once it has checked and handled a message that returned. */
  readonly onReturned?: () => void;
  /** The body a checked message is handed on as (the ticket that names it). */
  readonly ticket: (id: number) => unknown;
}

interface Pending<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

interface Running extends Pending<void> {
  readonly ctx: RunningContext;
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/** The requests to one child process, sent as frames and settled by its answers. */
export class ChildRequests {
  /** Checks, held messages and running handlers (items of a batch count each). */
  load = 0;
  readonly #process: ChildProcess;
  readonly #options: ChildRequestsOptions;
  #nextId = 1;
  readonly #checks = new Map<number, Pending<CheckResult> & { readonly since: number }>();
  readonly #running = new Map<number, Running>();
  readonly #batches = new Map<number, Running & { readonly size: number }>();
  readonly #checkSweep: ReturnType<typeof setInterval>;

  constructor(process: ChildProcess, options: ChildRequestsOptions) {
    this.#process = process;
    this.#options = options;
    this.#checkSweep = setInterval(() => this.#sweepChecks(), options.checkLimitMs);
    Deno.unrefTimer(this.#checkSweep);
  }

  /** Decode, validation and dedupe key of `message`, in the child. */
  check(message: Message): Promise<CheckResult> {
    const id = this.#nextId++;
    this.load++;
    this.#process.frame(FRAME.CHECK).u32(id).u32(message.attempts).f64(message.timestamp)
      .text(message.id).bytes(message.body);
    this.#process.send();
    const { promise, resolve, reject } = Promise.withResolvers<CheckResult>();
    this.#checks.set(id, { resolve, reject, since: performance.now() });
    return promise;
  }

  /** The answer to a check: dead, or held under its id with its dedupe key. */
  checked(frame: FrameReader): void {
    const id = frame.u32();
    const pending = this.#checks.get(id);
    if (pending === undefined) return;
    this.#checks.delete(id);
    const status = frame.u8();
    if (status === CHECK_DEAD) {
      this.load--;
      const reason = DEAD_REASONS[frame.u8()] ?? "validate";
      const dead: Extract<Outcome, { kind: "dead" }> = {
        kind: "dead",
        reason,
        error: frame.text(),
        durationMs: null,
      };
      pending.resolve(dead);
      return;
    }
    const key = status === KEY_DEFAULT ? undefined : status === KEY_CUSTOM ? frame.text() : null;
    pending.resolve({ kind: "checked", body: this.#options.ticket(id), key });
  }

  /** A held message will not be handled. */
  drop(id: number): void {
    this.load--;
    this.#process.frame(FRAME.DROP).u32(id);
    this.#process.send();
  }

  /** Runs the handler of a held message; `signal` aborting aborts it in the child. */
  handle(id: number, ctx: RunningContext & { readonly signal: AbortSignal }): Promise<void> {
    this.#process.frame(FRAME.HANDLE).u32(id);
    this.#process.send();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#running.set(id, this.#run(id, ctx, ctx.signal, resolve, reject));
    return promise;
  }

  /** Runs `handleBatch` on held messages; resolves with what it returned, as the batcher reads it. */
  handleBatch(
    ids: readonly number[],
    ctx: RunningContext & { readonly signal: AbortSignal },
  ): Promise<void | readonly BatchResult[]> {
    const batchId = this.#nextId++;
    const out = this.#process.frame(FRAME.BATCH).u32(batchId).u32(ids.length);
    for (const id of ids) out.u32(id);
    this.#process.send();
    const { promise, resolve, reject } = Promise.withResolvers<void | readonly BatchResult[]>();
    this.#batches.set(batchId, {
      ...this.#run(batchId, ctx, ctx.signal, resolve as (value: void) => void, reject),
      size: ids.length,
    });
    return promise;
  }

  /** A running handler or batch: its abort is sent on, and `kill_grace` later its child killed. */
  #run(
    id: number,
    ctx: RunningContext,
    signal: AbortSignal,
    resolve: (value: void) => void,
    reject: (error: Error) => void,
  ): Running {
    const onAbort = () => {
      const reason = signal.reason as { name?: unknown; message?: unknown } | undefined;
      const timedOut = reason?.name === "TimeoutError";
      this.#process.frame(FRAME.ABORT).u32(id).u8(timedOut ? ABORT_TIMEOUT : ABORT_STOP)
        .text(String(reason?.message ?? "aborted"));
      this.#process.send();
      setTimeout(() => {
        if (this.#running.has(id) || this.#batches.has(id)) this.#process.kill("timeout_kill");
      }, this.#options.killGraceMs);
    };
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener("abort", onAbort, { once: true });
    return { resolve, reject, ctx, signal, onAbort };
  }

  /** The end of a handler: returned, or what it threw. */
  settled(frame: FrameReader): void {
    const id = frame.u32();
    const running = this.#running.get(id);
    if (running === undefined) return;
    this.#running.delete(id);
    this.load--;
    running.signal.removeEventListener("abort", running.onAbort);
    const state = frame.u8();
    if (state === RETURNED) {
      this.#options.onReturned?.();
      running.resolve();
    } else {
      running.reject(readThrown(state, frame));
    }
  }

  /** The end of a batch: what `handleBatch` returned, or what it threw. */
  batchSettled(frame: FrameReader): void {
    const id = frame.u32();
    const batch = this.#batches.get(id);
    if (batch === undefined) return;
    this.#batches.delete(id);
    this.load -= batch.size;
    batch.signal.removeEventListener("abort", batch.onAbort);
    const state = frame.u8();
    if (state !== RETURNED) {
      batch.reject(readThrown(state, frame));
      return;
    }
    this.#options.onReturned?.();
    (batch.resolve as (value: unknown) => void)(readBatchReturn(frame));
  }

  /** The `ctx` of the running handler (`OWNER_MESSAGE`) or batch (`OWNER_BATCH`) `id`, if any. */
  owner(kind: number, id: number): RunningContext | undefined {
    return kind === OWNER_MESSAGE
      ? this.#running.get(id)?.ctx
      : kind === OWNER_BATCH
      ? this.#batches.get(id)?.ctx
      : undefined;
  }

  /** The child has exited: no check is swept any more. */
  stopSweep(): void {
    clearInterval(this.#checkSweep);
  }

  /** The child has ended: every request still open fails with `lost`. */
  failAll(lost: Error): void {
    for (const pending of [...this.#checks.values(), ...this.#running.values()]) {
      pending.reject(lost);
    }
    for (const batch of this.#batches.values()) batch.reject(lost);
    for (const running of [...this.#running.values(), ...this.#batches.values()]) {
      running.signal.removeEventListener("abort", running.onAbort);
    }
    this.#checks.clear();
    this.#running.clear();
    this.#batches.clear();
    this.load = 0;
  }

  /** A check pending for longer than a handler may run, with its grace: the child is stuck. */
  #sweepChecks(): void {
    const oldest = this.#checks.values().next();
    if (oldest.done) return;
    if (performance.now() - oldest.value.since > this.#options.checkLimitMs) {
      this.#process.kill("timeout_kill");
    }
  }
}
