/**
 * An entry's child processes (`processes: N`) behind the task runner's
 * {@linkcode WorkerCode}: each message is checked by the least-loaded child
 * and handled by the child that checked it; a child that ends is replaced
 * with backoff, what it ran requeued at once by the runner.
 *
 * @module
 */

import { retryDelay } from "../backoff.ts";
import { describeError } from "../error_text.ts";
import { HandlerLost } from "../runner/handler_lost.ts";
import type { CheckResult, WorkerCode } from "../runner/worker_code.ts";
import type {
  BatchContext,
  BatchItem,
  BatchResult,
  Logger,
  Message,
  SetupContext,
  WorkerContext,
} from "../worker/worker.ts";
import { Child, type Ticket } from "./child.ts";
import { type ChildEnd, RESTART_REASONS } from "./child_end.ts";
import { childCommand, type ChildProgram } from "./child_program.ts";
import type { ChildInit } from "./protocol.ts";

/** The first delay before a child that ended is replaced; it doubles while replacements fail. */
export const RESTART_DELAY_MS = { first: 200, max: 10_000 } as const;

/** Options of {@linkcode ChildPool}. */
export interface ChildPoolOptions {
  /** How many children. */
  readonly processes: number;
  readonly program: ChildProgram;
  readonly init: ChildInit;
  /** The entry's `timeout`. */
  readonly timeoutMs: number;
  /** How long a handler may run on after its abort before its child is killed. */
  readonly killGraceMs: number;
  /** Each child's heap limit in MiB; null for V8's default. */
  readonly memoryLimitMib: number | null;
  /** The entry's logger: a child's stderr and its replacements. */
  readonly log: Logger;
  /** Where the records of the worker's `ctx.log` go (default `log`). */
  readonly workerLog?: Logger;
}

/** One child of `/stats`. */
export interface ChildStatus {
  readonly pid: number | null;
  readonly rssBytes: number;
  /** Times the child of this slot was replaced. */
  readonly restarts: number;
  readonly inFlight: number;
}

/** Restarts by reason. */
export type ChildRestarts = Record<typeof RESTART_REASONS[number], number>;

/** A check waiting for a child to be up. */
interface Waiting {
  readonly message: Message;
  readonly resolve: (result: Promise<CheckResult>) => void;
}

/** An entry's children, as its worker's code. */
export class ChildPool implements WorkerCode {
  readonly slots: number;
  /** Restarts by reason, over every slot. */
  readonly restartsByReason: ChildRestarts = Object.fromEntries(
    RESTART_REASONS.map((reason) => [reason, 0]),
  ) as ChildRestarts;
  readonly #options: ChildPoolOptions;
  readonly #children: (Child | null)[];
  readonly #restarts: number[];
  /** Replacements of a slot that failed in a row: the exponent of its backoff. */
  readonly #failures: number[];
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #waiting: Waiting[] = [];
  #context: SetupContext | null = null;
  #stopping = false;
  #turn = 0;

  constructor(options: ChildPoolOptions) {
    this.#options = options;
    this.slots = options.processes;
    this.#children = new Array(options.processes).fill(null);
    this.#restarts = new Array(options.processes).fill(0);
    this.#failures = new Array(options.processes).fill(0);
  }

  /** Each child: its pid (null while it is being replaced), memory, restarts and load. */
  status(): ChildStatus[] {
    return this.#children.map((child, slot) => ({
      pid: child?.pid ?? null,
      rssBytes: child?.rssBytes ?? 0,
      restarts: this.#restarts[slot]!,
      inFlight: child?.load ?? 0,
    }));
  }

  /** Starts every child; each runs `setup()`. Rejects with the first failure (the others are stopped). */
  async setup(ctx: SetupContext): Promise<void> {
    this.#context = ctx;
    const started = Array.from({ length: this.slots }, (_, slot) => this.#start(slot));
    const results = await Promise.allSettled(started.map((child) => child.ready));
    const failed = results.find((result) => result.status === "rejected");
    if (failed === undefined) {
      for (const child of started) this.#watch(child);
      return;
    }
    await Promise.all(started.map((child) => child.teardown()));
    throw (failed as PromiseRejectedResult).reason;
  }

  /** Runs `teardown()` in every child and lets it exit; no child is replaced from now on. */
  async teardown(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const waiting of this.#waiting.splice(0)) {
      waiting.resolve(Promise.reject(new HandlerLost("the entry stopped before a child was up")));
    }
    const errors = await Promise.all(this.#children.map((child) => child?.teardown() ?? ""));
    const failures = errors.filter((error) => error !== "");
    if (failures.length > 0) throw new Error(failures.join("; "));
  }

  check(message: Message): Promise<CheckResult> {
    const child = this.#leastLoaded();
    if (child !== null) return child.check(message);
    // Every child is being replaced: the message waits for the first one up.
    return new Promise((resolve) => this.#waiting.push({ message, resolve }));
  }

  handle(body: unknown, ctx: WorkerContext): Promise<void> {
    const { child, id } = body as Ticket;
    return child.handle(id, ctx);
  }

  drop(body: unknown): void {
    const { child, id } = body as Ticket;
    child.drop(id);
  }

  handleBatch(
    items: readonly BatchItem[],
    ctx: BatchContext,
  ): Promise<void | readonly BatchResult[]> {
    const tickets = items.map((item) => item.body as Ticket);
    return tickets[0]!.child.handleBatch(tickets.map((ticket) => ticket.id), ctx);
  }

  slot(body: unknown): number {
    return (body as Ticket).child.slot;
  }

  /** The live child with the least load; ties go round, so that idle children share the work. */
  #leastLoaded(): Child | null {
    const count = this.#children.length;
    let best: Child | null = null;
    this.#turn = (this.#turn + 1) % count;
    for (let i = 0; i < count; i++) {
      const child = this.#children[(this.#turn + i) % count]!;
      if (child === null || !child.live) continue;
      if (best === null || child.load < best.load) best = child;
    }
    return best;
  }

  #start(slot: number): Child {
    const { program, init, memoryLimitMib, killGraceMs, timeoutMs, log } = this.#options;
    const v8Flags = [
      Deno.env.get("DENO_V8_FLAGS"),
      memoryLimitMib === null ? undefined : `--max-old-space-size=${memoryLimitMib}`,
    ].filter((flag) => flag !== undefined && flag !== "").join(",");
    const child = new Child({
      slot,
      command: childCommand(program),
      env: v8Flags === "" ? {} : { DENO_V8_FLAGS: v8Flags },
      init,
      killGraceMs,
      checkLimitMs: timeoutMs + killGraceMs,
      log,
      workerLog: this.#options.workerLog ?? log,
      publisher: () => this.#context!,
      onReturned: () => {
        this.#failures[slot] = 0;
      },
    });
    this.#children[slot] = child;
    return child;
  }

  /** Once `child` is up: hands it the waiting checks, and replaces it when it ends. */
  #watch(child: Child): void {
    for (const waiting of this.#waiting.splice(0)) waiting.resolve(child.check(waiting.message));
    child.ended.then((end) => this.#ended(child, end));
  }

  #ended(child: Child, end: ChildEnd): void {
    if (this.#stopping || end.reason === "stopped") return;
    const slot = child.slot;
    this.restartsByReason[end.reason]++;
    this.#restarts[slot]!++;
    const delayMs = retryDelay(
      ++this.#failures[slot]!,
      RESTART_DELAY_MS.first,
      RESTART_DELAY_MS.max,
    );
    this.#options.log.warning("child process ended; starting another", {
      child_pid: child.pid,
      reason: end.reason,
      exit_code: end.code,
      signal: end.signal,
      error: end.error,
      restarts: this.#restarts[slot],
      delay_ms: delayMs,
    });
    this.#children[slot] = null;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#replace(slot);
    }, delayMs);
    this.#timers.add(timer);
  }

  async #replace(slot: number): Promise<void> {
    if (this.#stopping) return;
    const child = this.#start(slot);
    try {
      await child.ready;
    } catch (error) {
      if (!this.#stopping) {
        this.#options.log.error("a child process failed to start", {
          child_pid: child.pid,
          error: describeError(error),
        });
      }
      // Its end is counted and replaced like any other.
      child.kill("exit");
      this.#ended(child, await child.ended);
      return;
    }
    if (this.#stopping) {
      await child.teardown();
      return;
    }
    this.#watch(child);
    this.#options.log.info("child process started", { child_pid: child.pid, slot });
  }
}
