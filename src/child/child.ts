/**
 * One child process as the daemon sees it: started, asked to check and
 * handle messages over frames (see `protocol.ts`), its `ctx.publish*`,
 * `touch` and `log` carried out for it, its handlers killed `kill_grace`
 * after their abort, and its end told with the reason.
 *
 * @module
 */

import { describeError } from "../error_text.ts";
import { HandlerLost } from "../runner/handler_lost.ts";
import type { Outcome } from "../runner/outcome.ts";
import type { CheckResult } from "../runner/worker_code.ts";
import type { BatchResult, Logger, Message, Publisher, WorkerContext } from "../worker/worker.ts";
import { FrameReader, FrameWriter, readFrames } from "./frames.ts";
import { readBatchReturn, readBodies, readThrown } from "./payloads.ts";
import type { ChildCommand } from "./child_program.ts";
import { type ChildEnd, type ChildEndReason, describeEnd, endReason } from "./child_end.ts";
import {
  ABORT_STOP,
  ABORT_TIMEOUT,
  CHECK_DEAD,
  type ChildInit,
  DEAD_REASONS,
  FRAME,
  KEY_CUSTOM,
  KEY_DEFAULT,
  LOG_LEVELS,
  OWNER_BATCH,
  OWNER_MESSAGE,
  PUBLISH,
  PUBLISH_MANY,
  RETURNED,
} from "./protocol.ts";

/** A message a child has checked and holds, for its handler or batch. */
export interface Ticket {
  readonly child: Child;
  readonly id: number;
}

/** Options of {@linkcode Child}. */
export interface ChildOptions {
  readonly slot: number;
  readonly command: ChildCommand;
  /** The child's environment over this process's (e.g. `DENO_V8_FLAGS`). */
  readonly env: Readonly<Record<string, string>>;
  readonly init: ChildInit;
  readonly killGraceMs: number;
  /** A check (decode, validation, dedupe key) taking longer than this gets its child killed. */
  readonly checkLimitMs: number;
  /** Where its stderr and troubles go (bound to the entry). */
  readonly log: Logger;
  /** Where its worker's `ctx.log` records go. */
  readonly workerLog: Logger;
  /** Where `ctx.publish*` of `setup()`, `teardown()` and ended handlers go. */
  readonly publisher: () => Publisher;
  /** Told once it has checked and handled a message that returned. */
  readonly onReturned?: () => void;
}

interface Pending<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: Error) => void;
}

interface Running extends Pending<void> {
  readonly ctx: Publisher & { touch(): void };
  readonly signal: AbortSignal;
  readonly onAbort: () => void;
}

/** How many lines of a child's stderr are kept to tell why it ended. */
const STDERR_TAIL = 20;

/** One child process. */
export class Child {
  readonly slot: number;
  readonly pid: number;
  /** When it started, on `performance.now()`'s clock. */
  readonly startedAt: number = performance.now();
  /** Resolves once its `setup()` ran; rejects with why it did not. */
  readonly ready: Promise<void>;
  /** Resolves once it has ended and its output was read. */
  readonly ended: Promise<ChildEnd>;
  /** Checks, held messages and running handlers (items of a batch count each). */
  load = 0;
  /** Resident memory, as it last said. */
  rssBytes = 0;
  #isReady = false;
  #end: ChildEnd | null = null;
  readonly #options: ChildOptions;
  readonly #process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out = new FrameWriter();
  #writing = false;
  #flushQueued = false;
  #nextId = 1;
  readonly #checks = new Map<number, Pending<CheckResult> & { readonly since: number }>();
  readonly #running = new Map<number, Running>();
  readonly #batches = new Map<number, Running & { readonly size: number }>();
  readonly #ready = Promise.withResolvers<void>();
  #killedFor: ChildEndReason | null = null;
  #fatal: string | null = null;
  readonly #stderr: string[] = [];
  readonly #checkSweep: ReturnType<typeof setInterval>;
  #tornDown: Pending<string> | null = null;

  constructor(options: ChildOptions) {
    this.#options = options;
    this.slot = options.slot;
    this.#process = new Deno.Command(options.command.command, {
      args: [...options.command.args],
      env: options.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    liveChildren.add(this.#process);
    this.pid = this.#process.pid;
    this.#writer = this.#process.stdin.getWriter();
    this.ready = this.#ready.promise;
    // A rejection nobody waits for (a replacement that failed) is told through `ended`.
    this.ready.catch(() => {});
    this.#frame(FRAME.INIT).text(JSON.stringify(options.init));
    this.#send();
    this.#checkSweep = setInterval(() => this.#sweepChecks(), options.checkLimitMs);
    Deno.unrefTimer(this.#checkSweep);
    this.ended = this.#watch();
  }

  /** Whether its `setup()` ran and it has not ended. */
  get live(): boolean {
    return this.#isReady && this.#end === null;
  }

  /** Decode, validation and dedupe key of `message`, in the child. */
  check(message: Message): Promise<CheckResult> {
    if (this.#end !== null) return Promise.reject(this.#lost());
    const id = this.#nextId++;
    this.load++;
    this.#frame(FRAME.CHECK).u32(id).u32(message.attempts).f64(message.timestamp)
      .text(message.id).bytes(message.body);
    this.#send();
    const { promise, resolve, reject } = Promise.withResolvers<CheckResult>();
    this.#checks.set(id, { resolve, reject, since: performance.now() });
    return promise;
  }

  #checked(frame: FrameReader): void {
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
    const ticket: Ticket = { child: this, id };
    pending.resolve({ kind: "checked", body: ticket, key });
  }

  /** A held message will not be handled. */
  drop(id: number): void {
    if (this.#end !== null) return;
    this.load--;
    this.#frame(FRAME.DROP).u32(id);
    this.#send();
  }

  /** Runs the handler of a held message; `ctx.signal` aborting aborts it in the child. */
  handle(id: number, ctx: WorkerContext): Promise<void> {
    if (this.#end !== null) return Promise.reject(this.#lost());
    this.#frame(FRAME.HANDLE).u32(id);
    this.#send();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#running.set(id, this.#run(id, ctx, ctx.signal, resolve, reject));
    return promise;
  }

  /** Runs `handleBatch` on held messages; resolves with what it returned, as the batcher reads it. */
  handleBatch(
    ids: readonly number[],
    ctx: Publisher & { readonly signal: AbortSignal; touch(): void },
  ): Promise<void | readonly BatchResult[]> {
    if (this.#end !== null) return Promise.reject(this.#lost());
    const batchId = this.#nextId++;
    const out = this.#frame(FRAME.BATCH).u32(batchId).u32(ids.length);
    for (const id of ids) out.u32(id);
    this.#send();
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
    ctx: Publisher & { touch(): void },
    signal: AbortSignal,
    resolve: (value: void) => void,
    reject: (error: Error) => void,
  ): Running {
    const onAbort = () => {
      const reason = signal.reason as { name?: unknown; message?: unknown } | undefined;
      const timedOut = reason?.name === "TimeoutError";
      this.#frame(FRAME.ABORT).u32(id).u8(timedOut ? ABORT_TIMEOUT : ABORT_STOP)
        .text(String(reason?.message ?? "aborted"));
      this.#send();
      setTimeout(() => {
        if (this.#running.has(id) || this.#batches.has(id)) this.kill("timeout_kill");
      }, this.#options.killGraceMs);
    };
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener("abort", onAbort, { once: true });
    return { resolve, reject, ctx, signal, onAbort };
  }

  #settled(frame: FrameReader): void {
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

  #batchSettled(frame: FrameReader): void {
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

  /** Runs the worker's `teardown()` in the child; resolves with its error ("" for none) once the child has ended. */
  async teardown(): Promise<string> {
    if (this.#end !== null) return "";
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    this.#tornDown = { resolve, reject };
    this.#frame(FRAME.TEARDOWN);
    this.#send();
    const error = await Promise.race([promise, this.ended.then(() => "")]);
    await this.ended;
    return error;
  }

  /** Ends the child at once (SIGKILL); what it ran is lost. */
  kill(reason: ChildEndReason): void {
    if (this.#end !== null || this.#killedFor !== null) return;
    this.#killedFor = reason;
    try {
      this.#process.kill("SIGKILL");
    } catch {
      // It has just exited.
    }
  }

  /** A check pending for longer than a handler may run, with its grace: the child is stuck. */
  #sweepChecks(): void {
    const oldest = this.#checks.values().next();
    if (oldest.done) return;
    if (performance.now() - oldest.value.since > this.#options.checkLimitMs) {
      this.kill("timeout_kill");
    }
  }

  #receive(frame: FrameReader): void {
    switch (frame.type) {
      case FRAME.READY:
        this.#isReady = true;
        this.#ready.resolve();
        return;
      case FRAME.SETUP_FAILED:
        this.#ready.reject(new Error(frame.text()));
        return;
      case FRAME.CHECKED:
        return this.#checked(frame);
      case FRAME.SETTLED:
        return this.#settled(frame);
      case FRAME.BATCH_SETTLED:
        return this.#batchSettled(frame);
      case FRAME.CALL:
        return this.#call(frame);
      case FRAME.TOUCH: {
        const kind = frame.u8();
        const id = frame.u32();
        const owner = kind === OWNER_MESSAGE
          ? this.#running.get(id)
          : kind === OWNER_BATCH
          ? this.#batches.get(id)
          : undefined;
        owner?.ctx.touch();
        return;
      }
      case FRAME.LOG: {
        const level = LOG_LEVELS[frame.u8()] ?? "info";
        const msg = frame.text();
        let properties: Record<string, unknown>;
        try {
          properties = JSON.parse(frame.text());
        } catch {
          properties = {};
        }
        this.#options.workerLog[level](msg, properties);
        return;
      }
      case FRAME.USAGE:
        this.rssBytes = frame.f64();
        return;
      case FRAME.FATAL:
        this.#fatal = frame.text();
        return;
      case FRAME.TORN_DOWN:
        this.#tornDown?.resolve(frame.text());
        return;
    }
  }

  /** `ctx.publish*` of a handler, batch, setup or teardown in the child, carried out here. */
  #call(frame: FrameReader): void {
    const callId = frame.u32();
    const kind = frame.u8();
    const ownerId = frame.u32();
    const method = frame.u8();
    const topic = frame.text();
    const delayMs = frame.f64();
    const bodies = readBodies(frame);
    const owner = kind === OWNER_MESSAGE
      ? this.#running.get(ownerId)?.ctx
      : kind === OWNER_BATCH
      ? this.#batches.get(ownerId)?.ctx
      : undefined;
    const target = owner ?? this.#options.publisher();
    let pending: Promise<void>;
    try {
      pending = method === PUBLISH
        ? target.publish(topic, bodies[0])
        : method === PUBLISH_MANY
        ? target.publishMany(topic, bodies)
        : target.publishDeferred(topic, bodies[0], delayMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      () => this.#reply(callId, ""),
      (error) => this.#reply(callId, describeError(error) || "publish failed"),
    );
  }

  #reply(callId: number, error: string): void {
    if (this.#end !== null) return;
    this.#frame(FRAME.REPLY).u32(callId).u8(error === "" ? 1 : 0).text(error);
    this.#send();
  }

  #frame(type: number): FrameWriter {
    return this.#out.start(type);
  }

  /** Closes the frame; the frames of a turn go to the child in one write. */
  #send(): void {
    this.#out.end();
    if (this.#flushQueued || this.#writing) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    this.#writing = true;
    try {
      while (this.#out.pending > 0 && this.#end === null) {
        await this.#writer.write(this.#out.take());
      }
    } catch {
      // The child is gone: its end is handled where its exit is seen.
    } finally {
      this.#writing = false;
    }
  }

  /** Reads its frames and stderr until it ends, then fails what it still had. */
  async #watch(): Promise<ChildEnd> {
    const frames = readFrames(this.#process.stdout, (frame) => this.#receive(frame))
      .catch((error) => {
        this.#options.log.error("a child process wrote a bad frame; ending it", {
          child_pid: this.pid,
          error: describeError(error),
        });
        this.kill("crash");
        // Drains the rest so that the process can end.
        return this.#process.stdout.cancel().catch(() => {});
      });
    const stderr = this.#readStderr();
    const status = await this.#process.status;
    await Promise.all([frames, stderr]);
    liveChildren.delete(this.#process);
    clearInterval(this.#checkSweep);
    await this.#writer.close().catch(() => {});
    const end: ChildEnd = {
      reason: this.#reason(status),
      code: status.code,
      signal: status.signal,
      error: this.#fatal ?? this.#stderr.join("\n"),
    };
    this.#end = end;
    this.#ready.reject(new Error(`it ended before its setup() completed: ${describeEnd(end)}`));
    this.#tornDown?.resolve("");
    const lost = this.#lost();
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
    return end;
  }

  #reason(status: Deno.CommandStatus): ChildEndReason {
    return endReason(status, this.#killedFor, this.#fatal !== null, this.#stderr);
  }

  #lost(): HandlerLost {
    const end = this.#end;
    return new HandlerLost(
      end === null
        ? `the child process ${this.pid} ended`
        : `the child process ${this.pid} ended (${describeEnd(end)}) before the handler settled`,
    );
  }

  async #readStderr(): Promise<void> {
    let partial = "";
    for await (const chunk of this.#process.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.#stderrLine(line);
    }
    if (partial !== "") this.#stderrLine(partial);
  }

  #stderrLine(line: string): void {
    // deno-lint-ignore no-control-regex
    const text = line.replace(/\x1b\[[0-9;]*m/g, "").trimEnd();
    if (text === "") return;
    this.#stderr.push(text);
    if (this.#stderr.length > STDERR_TAIL) this.#stderr.shift();
    this.#options.log.info("child stderr", { child_pid: this.pid, line: text });
  }
}

/** Every child process running, killed if this process exits first. */
const liveChildren = new Set<Deno.ChildProcess>();

globalThis.addEventListener("unload", () => {
  for (const process of liveChildren) {
    try {
      process.kill("SIGKILL");
    } catch {
      // Already ended.
    }
  }
});
