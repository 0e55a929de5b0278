/**
 * The child process's side: loads the entry's worker, runs its `setup()`,
 * then its checks and handlers as the daemon asks, over frames on stdin and
 * stdout (see `protocol.ts`), and its `teardown()` at the end. What it runs
 * is {@linkcode localWorkerCode}, the daemon's own in-thread path; the `ctx`
 * is the daemon's too, with publishing, touching and logging sent to the
 * daemon.
 *
 * @module
 */

import { BatchContext } from "../context/batch_context.ts";
import { EntryContext, type EntryPublisher } from "../context/entry_context.ts";
import { MessageContext } from "../context/message_context.ts";
import { describeError } from "../error_text.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import { localWorkerCode } from "../runner/local_worker_code.ts";
import type { TaskMessage } from "../runner/task_runner.ts";
import type { CheckResult, WorkerCode } from "../runner/worker_code.ts";
import type { BatchItem, Logger, PublishBody } from "../worker/worker.ts";
import { loadWorkers, type WorkerSource } from "../worker/worker_loader.ts";
import { FrameReader, FrameWriter, readFrames } from "./frames.ts";
import { encodeBodies, writeBatchReturn, writeBodies, writeSettled } from "./payloads.ts";
import {
  ABORT_TIMEOUT,
  CHECK_DEAD,
  type ChildInit,
  DEAD_REASONS,
  FRAME,
  KEY_CUSTOM,
  KEY_DEFAULT,
  KEY_NONE,
  LOG_LEVELS,
  OWNER_BATCH,
  OWNER_ENTRY,
  OWNER_MESSAGE,
  PUBLISH,
  PUBLISH_DEFERRED,
  PUBLISH_MANY,
} from "./protocol.ts";

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

/** A message checked and waiting for its handler or batch. */
interface Held {
  readonly message: TaskMessage;
  readonly body: unknown;
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
  readonly #options: ChildServerOptions;
  readonly #out = new FrameWriter();
  #flushQueued = false;
  #code: WorkerCode | null = null;
  #context: EntryContext | null = null;
  #init: ChildInit | null = null;
  #minLevel = 0;
  readonly #held = new Map<number, Held>();
  readonly #running = new Map<number, AbortController>();
  readonly #calls = new Map<number, PromiseWithResolvers<void>>();
  #nextCall = 1;
  #done = Promise.withResolvers<number>();

  constructor(options: ChildServerOptions) {
    this.#options = options;
  }

  async serve(): Promise<number> {
    const reportFatal = (error: unknown) => {
      this.#begin(FRAME.FATAL).text(describeError(error));
      this.#end();
      this.#flush();
    };
    // Written before the runtime prints the error and exits: the daemon then knows it crashed.
    globalThis.addEventListener("error", (event) => reportFatal(event.error));
    globalThis.addEventListener("unhandledrejection", (event) => reportFatal(event.reason));
    readFrames(this.#options.input, (frame) => this.#receive(frame)).then(
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
        return this.#check(frame);
      case FRAME.HANDLE:
        return this.#handle(frame.u32());
      case FRAME.DROP:
        this.#held.delete(frame.u32());
        return;
      case FRAME.ABORT: {
        const id = frame.u32();
        const kind = frame.u8();
        const reason = frame.text();
        this.#running.get(id)?.abort(
          new DOMException(reason, kind === ABORT_TIMEOUT ? "TimeoutError" : "AbortError"),
        );
        return;
      }
      case FRAME.BATCH:
        return this.#batch(frame);
      case FRAME.REPLY: {
        const call = this.#calls.get(frame.u32());
        const ok = frame.u8() === 1;
        const error = frame.text();
        if (call === undefined) return;
        if (ok) call.resolve();
        else call.reject(new Error(error));
        return;
      }
      case FRAME.TEARDOWN:
        void this.#teardown();
        return;
    }
  }

  /** Loads the worker and runs its `setup()`: `READY`, or `SETUP_FAILED` and the end. */
  async #start(init: ChildInit): Promise<void> {
    this.#init = init;
    this.#minLevel = Math.max(0, LOG_LEVELS.indexOf(init.logLevel));
    const location = { file: "child", line: 1, col: 1 };
    let failure: string | null = null;
    try {
      const { workers, issues } = await loadWorkers(
        [{ index: 0, name: init.worker, location, options: init.options }],
        {},
        this.#options.source,
      );
      const loaded = workers.get(0);
      if (loaded === undefined) {
        failure = issues.map((issue) => issue.message).join("; ");
      } else {
        this.#code = localWorkerCode(loaded.definition);
        this.#context = this.#entryContext(loaded.options, OWNER_ENTRY, 0);
        await this.#code.setup(this.#context);
      }
    } catch (error) {
      failure = describeError(error);
    }
    if (failure !== null) {
      this.#begin(FRAME.SETUP_FAILED).text(failure);
      this.#end();
      this.#flush();
      this.#done.resolve(1);
      return;
    }
    this.#begin(FRAME.READY);
    this.#end();
    this.#usage();
    Deno.unrefTimer(setInterval(() => this.#usage(), USAGE_PERIOD_MS));
  }

  #usage(): void {
    this.#begin(FRAME.USAGE).f64(Deno.memoryUsage().rss);
    this.#end();
  }

  #check(frame: FrameReader): void {
    const id = frame.u32();
    const attempts = frame.u32();
    const timestamp = frame.f64();
    const messageId = frame.text();
    const body = frame.bytes();
    const message: TaskMessage = {
      id: messageId,
      attempts,
      timestamp,
      body,
      msgTimeoutMs: 0,
      idScope: "",
      touch: () => this.#touch(OWNER_MESSAGE, id),
    };
    const checked = this.#code!.check(message);
    if (checked instanceof Promise) {
      checked.then((checked) => this.#checked(id, message, checked));
    } else {
      this.#checked(id, message, checked);
    }
  }

  #checked(id: number, message: TaskMessage, checked: CheckResult): void {
    const out = this.#begin(FRAME.CHECKED).u32(id);
    if (checked.kind === "dead") {
      out.u8(CHECK_DEAD).u8(DEAD_REASONS.indexOf(checked.reason)).text(checked.error);
    } else {
      this.#held.set(id, { message, body: checked.body });
      if (checked.key === undefined) out.u8(KEY_DEFAULT);
      else if (checked.key === null) out.u8(KEY_NONE);
      else out.u8(KEY_CUSTOM).text(checked.key);
    }
    this.#end();
  }

  #handle(id: number): void {
    const held = this.#held.get(id);
    this.#held.delete(id);
    if (held === undefined) return this.#settled(id, new Error(`no checked message ${id}`));
    const controller = new AbortController();
    this.#running.set(id, controller);
    const ctx = new MessageContext(
      this.#context!,
      held.message,
      controller.signal,
      () => this.#publisher(OWNER_MESSAGE, id),
    );
    let result: unknown;
    try {
      result = this.#code!.handle(held.body, ctx);
    } catch (error) {
      return this.#settled(id, error);
    }
    if (!isPromiseLike(result)) return this.#settled(id, undefined, true);
    Promise.resolve(result).then(
      () => this.#settled(id, undefined, true),
      (error) => this.#settled(id, error),
    );
  }

  #settled(id: number, error: unknown, returned = false): void {
    this.#running.delete(id);
    const out = this.#begin(FRAME.SETTLED).u32(id);
    writeSettled(out, returned, error);
    this.#end();
  }

  #batch(frame: FrameReader): void {
    const batchId = frame.u32();
    const count = frame.u32();
    const items: BatchItem[] = [];
    for (let i = 0; i < count; i++) {
      const id = frame.u32();
      const held = this.#held.get(id);
      this.#held.delete(id);
      if (held !== undefined) items.push({ body: held.body, message: held.message });
    }
    const controller = new AbortController();
    this.#running.set(batchId, controller);
    const base = this.#entryContext(this.#context!.options, OWNER_BATCH, batchId);
    const ctx = new BatchContext(base, () => this.#touch(OWNER_BATCH, batchId), controller.signal);
    let returned: unknown;
    try {
      returned = this.#code!.handleBatch(items, ctx);
    } catch (error) {
      return this.#batchSettled(batchId, false, error);
    }
    if (!isPromiseLike(returned)) return this.#batchSettled(batchId, true, returned);
    Promise.resolve(returned).then(
      (value) => this.#batchSettled(batchId, true, value),
      (error) => this.#batchSettled(batchId, false, error),
    );
  }

  /** What `handleBatch` returned (or threw), as the daemon's batcher reads it. */
  #batchSettled(batchId: number, returned: boolean, value: unknown): void {
    this.#running.delete(batchId);
    const out = this.#begin(FRAME.BATCH_SETTLED).u32(batchId);
    writeSettled(out, returned, value);
    if (returned) writeBatchReturn(out, value);
    this.#end();
  }

  async #teardown(): Promise<void> {
    let error = "";
    try {
      if (this.#code !== null) await this.#code.teardown(this.#context!);
    } catch (thrown) {
      error = describeError(thrown);
    }
    this.#begin(FRAME.TORN_DOWN).text(error);
    this.#end();
    this.#flush();
    this.#done.resolve(0);
  }

  /** An entry's `ctx` whose `publish*`, `touch` and `log` go to the daemon as `owner`'s. */
  #entryContext(
    options: Readonly<Record<string, unknown>>,
    kind: number,
    id: number,
  ): EntryContext {
    const init = this.#init!;
    return new EntryContext({
      topic: init.topic,
      channel: init.channel,
      worker: init.worker,
      options,
      log: this.#logger(),
      publisher: this.#publisher(kind, id),
    });
  }

  #logger(): Logger {
    const at = (level: number) => (msg: string, properties?: Record<string, unknown>) => {
      if (level < this.#minLevel) return;
      this.#begin(FRAME.LOG).u8(level).text(msg).text(propertiesJson(properties));
      this.#end();
    };
    return { debug: at(0), info: at(1), warning: at(2), error: at(3) };
  }

  #publisher(kind: number, id: number): EntryPublisher {
    return {
      publish: (topic, body) => this.#call(kind, id, PUBLISH, topic, [body], 0),
      publishMany: (topic, bodies) => this.#call(kind, id, PUBLISH_MANY, topic, bodies, 0),
      publishDeferred: (topic, body, delayMs) =>
        this.#call(kind, id, PUBLISH_DEFERRED, topic, [body], delayMs),
      publishRaw: () => Promise.reject(new Error("a child publishes no raw topics")),
    };
  }

  /** Asks the daemon to publish; resolves or rejects as its publish did. */
  #call(
    kind: number,
    id: number,
    method: number,
    topic: string,
    bodies: readonly PublishBody[],
    delayMs: number,
  ): Promise<void> {
    const encoded = encodeBodies(bodies);
    if (encoded instanceof Error) return Promise.reject(encoded);
    const callId = this.#nextCall++;
    const call = Promise.withResolvers<void>();
    this.#calls.set(callId, call);
    const out = this.#begin(FRAME.CALL).u32(callId).u8(kind).u32(id).u8(method).text(topic)
      .f64(delayMs);
    writeBodies(out, encoded);
    this.#end();
    return call.promise.finally(() => this.#calls.delete(callId));
  }

  #touch(kind: number, id: number): void {
    this.#begin(FRAME.TOUCH).u8(kind).u32(id);
    this.#end();
  }

  #begin(type: number): FrameWriter {
    return this.#out.start(type);
  }

  /** Closes the frame and sends it with the others of this turn. */
  #end(): void {
    this.#out.end();
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#out.pending > 0) this.#options.write(this.#out.take());
  }
}

/** Log properties as JSON; what JSON cannot hold is written as text. */
function propertiesJson(properties: Record<string, unknown> | undefined): string {
  if (properties === undefined) return "{}";
  try {
    return JSON.stringify(
      properties,
      (_key, value) =>
        value instanceof Error
          ? describeError(value)
          : typeof value === "bigint"
          ? String(value)
          : value,
    ) ?? "{}";
  } catch (error) {
    return JSON.stringify({ properties_error: describeError(error) });
  }
}
