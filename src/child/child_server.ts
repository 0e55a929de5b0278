/**
 * The child process's side: loads the entry's worker, runs its `setup()`,
 * then its checks and handlers as the daemon asks, over frames on stdin and
 * stdout (see `protocol.ts`), and its `teardown()` at the end. What it runs
 * is {@linkcode localWorkerCode}, the daemon's own in-thread path; the `ctx`
 * is the daemon's too, with publishing, touching and logging sent to the
 * daemon ({@linkcode ContextForwarder}). Messages are checked and handled by
 * {@linkcode ChildMessages}, batches by {@linkcode ChildBatches}.
 *
 * @module
 */

import type { EntryContext } from "../context/entry_context.ts";
import { describeError } from "../error_text.ts";
import { localWorkerCode } from "../runner/local_worker_code.ts";
import type { WorkerCode } from "../runner/worker_code.ts";
import { loadWorkers, type WorkerSource } from "../worker/worker_loader.ts";
import { type FrameReader, readFrames } from "./frames.ts";
import { ChildOutbox } from "./child_outbox.ts";
import { ChildMessages } from "./child_messages.ts";
import { ChildBatches } from "./child_batches.ts";
import { ContextForwarder } from "./context_forwarder.ts";
import { ABORT_TIMEOUT, type ChildInit, FRAME, OWNER_ENTRY } from "./protocol.ts";

const USAGE_PERIOD_MS = 1_000;

/** What {@linkcode serveChild} reads from and writes to. */
export interface ChildServerOptions {
  /** Where worker modules come from (the daemon's own source, by name). */
  readonly source: WorkerSource;
  /** The daemon's frames (stdin). */
  readonly input: ReadableStream<Uint8Array>;
  /** Writes frames to the daemon, whole, before it returns (stdout). */
  readonly write: (bytes: Uint8Array) => void;
}

/**
 * {@linkcode serveChild} on this process's stdin and stdout. What the
 * worker prints with `console` goes to stderr (which the daemon logs), as
 * stdout carries the frames.
 */
export function serveChildOnStdio(source: WorkerSource): Promise<number> {
  for (const method of ["log", "info", "debug", "dir", "dirxml", "table"] as const) {
    console[method] = (...args: unknown[]) => console.error(...args);
  }
  return serveChild({
    source,
    input: Deno.stdin.readable,
    write: (bytes) => {
      let rest = bytes;
      while (rest.length > 0) rest = rest.subarray(Deno.stdout.writeSync(rest));
    },
  });
}

/**
 * Serves the daemon until it sends `TEARDOWN` (after which the worker's
 * `teardown()` runs) or closes stdin; resolves with the exit code.
 */
export async function serveChild(options: ChildServerOptions): Promise<number> {
  const server = new ChildServer(options);
  return await server.serve();
}

class ChildServer {
  readonly #input: ReadableStream<Uint8Array>;
  readonly #source: WorkerSource;
  readonly #out: ChildOutbox;
  #code: WorkerCode | null = null;
  #context: EntryContext | null = null;
  #forwarder: ContextForwarder | null = null;
  #messages: ChildMessages | null = null;
  #batches: ChildBatches | null = null;
  #done = Promise.withResolvers<number>();

  constructor(options: ChildServerOptions) {
    this.#input = options.input;
    this.#source = options.source;
    this.#out = new ChildOutbox(options.write);
  }

  async serve(): Promise<number> {
    const reportFatal = (error: unknown) => {
      this.#out.begin(FRAME.FATAL).text(describeError(error));
      this.#out.end();
      this.#out.flush();
    };
    // Written before the runtime prints the error and exits: the daemon then knows it crashed.
    globalThis.addEventListener("error", (event) => reportFatal(event.error));
    globalThis.addEventListener("unhandledrejection", (event) => reportFatal(event.reason));
    readFrames(this.#input, (frame) => this.#receive(frame)).then(
      // The daemon is gone (or closed the pipe): nothing is left to answer.
      () => this.#done.resolve(0),
      () => this.#done.resolve(1),
    );
    return await this.#done.promise;
  }

  #receive(frame: FrameReader): void {
    switch (frame.type) {
      case FRAME.INIT:
        void this.#start(JSON.parse(frame.text()) as ChildInit);
        return;
      case FRAME.CHECK:
        return this.#messages!.check(frame);
      case FRAME.HANDLE:
        return this.#messages!.handle(frame.u32());
      case FRAME.DROP:
        this.#messages?.take(frame.u32());
        return;
      case FRAME.ABORT: {
        const id = frame.u32();
        const kind = frame.u8();
        const reason = new DOMException(
          frame.text(),
          kind === ABORT_TIMEOUT ? "TimeoutError" : "AbortError",
        );
        // Handlers and batches are numbered from one sequence: at most one of them has `id`.
        this.#messages?.abort(id, reason);
        this.#batches?.abort(id, reason);
        return;
      }
      case FRAME.BATCH:
        return this.#batches!.batch(frame);
      case FRAME.REPLY:
        this.#forwarder?.reply(frame);
        return;
      case FRAME.TEARDOWN:
        void this.#teardown();
        return;
    }
  }

  /** Loads the worker and runs its `setup()`: `READY`, or `SETUP_FAILED` and the end. */
  async #start(init: ChildInit): Promise<void> {
    const forwarder = new ContextForwarder(this.#out, init);
    this.#forwarder = forwarder;
    const location = { file: "child", line: 1, col: 1 };
    let failure: string | null = null;
    try {
      const { workers, issues } = await loadWorkers(
        [{ index: 0, name: init.worker, location, options: init.options }],
        {},
        this.#source,
      );
      const loaded = workers.get(0);
      if (loaded === undefined) {
        failure = issues.map((issue) => issue.message).join("; ");
      } else {
        const code = localWorkerCode(loaded.definition);
        const context = forwarder.entryContext(loaded.options, OWNER_ENTRY, 0);
        this.#code = code;
        this.#context = context;
        const worker = { code, context, out: this.#out, forwarder };
        this.#messages = new ChildMessages(worker);
        this.#batches = new ChildBatches(worker, this.#messages);
        await code.setup(context);
      }
    } catch (error) {
      failure = describeError(error);
    }
    if (failure !== null) {
      this.#out.begin(FRAME.SETUP_FAILED).text(failure);
      this.#out.end();
      this.#out.flush();
      this.#done.resolve(1);
      return;
    }
    this.#out.begin(FRAME.READY);
    this.#out.end();
    this.#usage();
    Deno.unrefTimer(setInterval(() => this.#usage(), USAGE_PERIOD_MS));
  }

  #usage(): void {
    this.#out.begin(FRAME.USAGE).f64(Deno.memoryUsage().rss);
    this.#out.end();
  }

  async #teardown(): Promise<void> {
    let error = "";
    try {
      if (this.#code !== null) await this.#code.teardown(this.#context!);
    } catch (thrown) {
      error = describeError(thrown);
    }
    this.#out.begin(FRAME.TORN_DOWN).text(error);
    this.#out.end();
    this.#out.flush();
    this.#done.resolve(0);
  }
}
