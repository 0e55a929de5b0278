/**
 * One child process as the daemon sees it: started, asked to check and
 * handle messages over frames (see `protocol.ts`), its `ctx.publish*`,
 * `touch` and `log` carried out for it, its handlers killed `kill_grace`
 * after their abort, and its end told with the reason. The process itself
 * is a {@linkcode ChildProcess}; what was asked of it, {@linkcode ChildRequests}.
 *
 * @module
 */

import { describeError } from "../error_text.ts";
import { HandlerLost } from "../runner/handler_lost.ts";
import type { CheckResult } from "../runner/worker_code.ts";
import type { BatchResult, Logger, Message, Publisher, WorkerContext } from "../worker/worker.ts";
import type { FrameReader } from "./frames.ts";
import { readBodies } from "./payloads.ts";
import type { ChildCommand } from "./child_program.ts";
import { type ChildEnd, type ChildEndReason, describeEnd } from "./child_end.ts";
import { ChildProcess } from "./child_process.ts";
import { ChildRequests } from "./child_requests.ts";
import { type ChildInit, FRAME, LOG_LEVELS, PUBLISH, PUBLISH_MANY } from "./protocol.ts";

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
  /** Resident memory, as it last said. */
  rssBytes = 0;
  #isReady = false;
  readonly #options: ChildOptions;
  readonly #process: ChildProcess;
  readonly #requests: ChildRequests;
  readonly #ready = Promise.withResolvers<void>();
  #tornDown: { readonly resolve: (error: string) => void } | null = null;

  constructor(options: ChildOptions) {
    this.#options = options;
    this.slot = options.slot;
    this.#process = new ChildProcess({
      command: options.command,
      env: options.env,
      log: options.log,
      receive: (frame) => this.#receive(frame),
      onExit: () => this.#requests.stopSweep(),
      onEnd: (end) => this.#ended(end),
    });
    this.pid = this.#process.pid;
    this.ready = this.#ready.promise;
    // A rejection nobody waits for (a replacement that failed) is told through `ended`.
    this.ready.catch(() => {});
    this.#process.frame(FRAME.INIT).text(JSON.stringify(options.init));
    this.#process.send();
    this.#requests = new ChildRequests(this.#process, {
      killGraceMs: options.killGraceMs,
      checkLimitMs: options.checkLimitMs,
      ticket: (id): Ticket => ({ child: this, id }),
      ...(options.onReturned === undefined ? {} : { onReturned: options.onReturned }),
    });
    this.ended = this.#process.ended;
  }

  /** Checks, held messages and running handlers (items of a batch count each). */
  get load(): number {
    return this.#requests.load;
  }

  /** Whether its `setup()` ran and it has not ended. */
  get live(): boolean {
    return this.#isReady && this.#process.end === null;
  }

  /** Decode, validation and dedupe key of `message`, in the child. */
  check(message: Message): Promise<CheckResult> {
    if (this.#process.end !== null) return Promise.reject(this.#lost());
    return this.#requests.check(message);
  }

  /** A held message will not be handled. */
  drop(id: number): void {
    if (this.#process.end !== null) return;
    this.#requests.drop(id);
  }

  /** Runs the handler of a held message; `ctx.signal` aborting aborts it in the child. */
  handle(id: number, ctx: WorkerContext): Promise<void> {
    if (this.#process.end !== null) return Promise.reject(this.#lost());
    return this.#requests.handle(id, ctx);
  }

  /** Runs `handleBatch` on held messages; resolves with what it returned, as the batcher reads it. */
  handleBatch(
    ids: readonly number[],
    ctx: Publisher & { readonly signal: AbortSignal; touch(): void },
  ): Promise<void | readonly BatchResult[]> {
    if (this.#process.end !== null) return Promise.reject(this.#lost());
    return this.#requests.handleBatch(ids, ctx);
  }

  /** Runs the worker's `teardown()` in the child; resolves with its error ("" for none) once the child has ended. */
  async teardown(): Promise<string> {
    if (this.#process.end !== null) return "";
    const { promise, resolve } = Promise.withResolvers<string>();
    this.#tornDown = { resolve };
    this.#process.frame(FRAME.TEARDOWN);
    this.#process.send();
    const error = await Promise.race([promise, this.ended.then(() => "")]);
    await this.ended;
    return error;
  }

  /** Ends the child at once (SIGKILL); what it ran is lost. */
  kill(reason: ChildEndReason): void {
    this.#process.kill(reason);
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
        return this.#requests.checked(frame);
      case FRAME.SETTLED:
        return this.#requests.settled(frame);
      case FRAME.BATCH_SETTLED:
        return this.#requests.batchSettled(frame);
      case FRAME.CALL:
        return this.#call(frame);
      case FRAME.TOUCH: {
        const kind = frame.u8();
        const id = frame.u32();
        this.#requests.owner(kind, id)?.touch();
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
        this.#process.fatal(frame.text());
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
    const target = this.#requests.owner(kind, ownerId) ?? this.#options.publisher();
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
    if (this.#process.end !== null) return;
    this.#process.frame(FRAME.REPLY).u32(callId).u8(error === "" ? 1 : 0).text(error);
    this.#process.send();
  }

  /** It has ended: what it still had fails. */
  #ended(end: ChildEnd): void {
    this.#ready.reject(new Error(`it ended before its setup() completed: ${describeEnd(end)}`));
    this.#tornDown?.resolve("");
    this.#requests.failAll(this.#lost());
  }

  #lost(): HandlerLost {
    const end = this.#process.end;
    return new HandlerLost(
      end === null
        ? `the child process ${this.pid} ended`
        : `the child process ${this.pid} ended (${describeEnd(end)}) before the handler settled`,
    );
  }
}
