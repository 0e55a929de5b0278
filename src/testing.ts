/**
 * Testing a worker without nsqd: {@linkcode runWorker} runs one message
 * through the daemon's own task runner (decode → validate or schema → dedupe
 * key → claim → handle under its deadline → outcome) with the `ctx` the
 * daemon builds, and gives back the outcome, what the handler published and
 * what it logged. {@linkcode runBatch} does the same for a batch worker's
 * `handleBatch`, with the daemon's own batcher.
 *
 * @example
 * ```ts ignore
 * import { assertEquals } from "jsr:@std/assert";
 * import { runWorker } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview.ts";
 *
 * Deno.test("a page view is counted", async () => {
 *   const { outcome } = await runWorker(worker, { event_id: "e1", clicks: 2 });
 *   assertEquals(outcome, { kind: "finish" });
 * });
 * ```
 *
 * @module
 */

import type { BatchConfig, SourceLocation } from "./config/types.ts";
import { DEDUPE_FIELDS, SETTING_FIELDS } from "./config/schema.ts";
import { MemoryStore } from "./dedupe/memory_store.ts";
import type { DedupeStore } from "./dedupe/store.ts";
import type { EntryPublisher } from "./context/entry_context.ts";
import { encodeBody, PublishError, refusalOf } from "./entry/publisher.ts";
import {
  createMessagePath,
  type MessagePath,
  type MessagePathOptions,
} from "./entry/message_path.ts";
import type { DeadReason, Outcome } from "./runner/outcome.ts";
import type { TaskMessage } from "./runner/task_runner.ts";
import { type LoadedWorker, loadWorkers, WorkerLoadError } from "./worker/worker_loader.ts";
import type { Logger, PublishBody, WorkerDefinition, WorkerOptions } from "./worker/worker.ts";
import { ChildPool } from "./child/child_pool.ts";
import { childPermissions, findDenoConfig } from "./child/child_program.ts";
import { fileURLToPath } from "node:url";

export type { DedupeStore } from "./dedupe/store.ts";

/** Options of {@linkcode runWorker}; each defaults to what an entry of a config gets. */
export interface RunWorkerOptions<O extends WorkerOptions = WorkerOptions> {
  /** The entry's `options`, merged over the worker's defaults (checked as `check` does). */
  readonly options?: Partial<O>;
  /** The delivery attempt, from 1 (default 1). */
  readonly attempts?: number;
  /** The entry's `max_attempts` (default 5). */
  readonly maxAttempts?: number;
  /** The NSQ message id (default: a new random one each run). */
  readonly id?: string;
  /** The entry's `timeout` in milliseconds (default 60 000): `ctx.signal` aborts then. */
  readonly timeoutMs?: number;
  /**
   * The dedupe store (default: a new memory store each run). Share one,
   * made by {@linkcode dedupeStore}, between runs to see `duplicate` (a key
   * already done) and `busy` (a key claimed by a run still going).
   */
  readonly store?: DedupeStore;
  /** `ctx.topic` (default `"test"`). */
  readonly topic?: string;
  /** `ctx.channel` (default `"test"`). */
  readonly channel?: string;
  /**
   * The module whose default export is `worker`: runs it in a child
   * process, as an entry with `processes: 1` does (its `setup()` and
   * `teardown()` run there around the message, `ctx.publish*` come back to
   * the kit). The child gets the permissions granted to the whole test.
   */
  readonly child?: URL;
  /** With `child`: how long the handler may run on after its timeout before the child is killed (default 5 000). */
  readonly killGraceMs?: number;
}

/** The outcome (docs/workers.md, "Message outcomes") a message got, as the daemon would carry it out. */
export interface TestOutcome {
  readonly kind: Outcome["kind"];
  /** Why it was dead-lettered (`dead` only). */
  readonly reason?: DeadReason;
  /** What went wrong (`retry` and `dead`): the dead letter's `error`. */
  readonly error?: string;
  /** How long nsqd is asked to wait before redelivering it (`retry` and `busy`). */
  readonly delayMs?: number;
}

/** One message the handler published, as it gave it (bytes, a string or a value). */
export interface PublishedMessage {
  readonly topic: string;
  readonly body: PublishBody;
  /** Set for `publishDeferred`. */
  readonly delayMs?: number;
}

/** One log line of the handler, with the fields bound to `ctx.log` (`msg_id`, `attempts`). */
export interface LogRecord {
  readonly level: "debug" | "info" | "warning" | "error";
  readonly msg: string;
  readonly properties: Record<string, unknown>;
}

/** What {@linkcode runWorker} resolves to. */
export interface RunResult {
  readonly outcome: TestOutcome;
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/** Options of {@linkcode runBatch}: those of {@linkcode runWorker}, for every body, and the batch's. */
export interface RunBatchOptions<O extends WorkerOptions = WorkerOptions>
  extends RunWorkerOptions<O> {
  /**
   * The entry's `batch:` over the worker's `batch` (`wait` in milliseconds);
   * without a size anywhere, `max_in_flight`'s default. The kit hands a
   * partial batch over once every body has joined, as if `wait` had passed.
   */
  readonly batch?: { readonly size?: number; readonly wait?: number };
}

/** What {@linkcode runBatch} resolves to. */
export interface RunBatchResult {
  /** One outcome per body, in the order of the bodies. */
  readonly outcomes: TestOutcome[];
  /** The size of each batch handed to `handleBatch`, in order; invalid or duplicate bodies are in none. */
  readonly batches: number[];
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/** An entry's setting as the config declares it: one source for the defaults. */
function settingDefault(key: keyof typeof SETTING_FIELDS): number {
  return SETTING_FIELDS[key].fallback as number;
}

/**
 * A memory dedupe store with the config's defaults (capacity and ttl), to
 * share between runs of {@linkcode runWorker}.
 */
export function dedupeStore(): DedupeStore {
  return new MemoryStore({
    capacity: DEDUPE_FIELDS.capacity.fallback as number,
    ttlMs: DEDUPE_FIELDS.ttl.fallback as number,
  });
}

const TEST_FILE: SourceLocation = { file: "runWorker", line: 1, col: 1 };
const WORKER_NAME = "test/worker";

/**
 * Runs `body` through `worker` as the daemon would: `body` may be a string
 * or bytes (the raw message body) or any other value (published as JSON).
 * `ctx.publish*` are recorded instead of sent (refused as nsqd would refuse
 * them), `ctx.log` is captured, and `ctx.signal` aborts when the timeout
 * passes. Rejects with a `WorkerLoadError` for a worker `check` would refuse.
 *
 * @example
 * ```ts ignore
 * import { dedupeStore, runWorker } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview.ts";
 *
 * const store = dedupeStore();
 * await runWorker(worker, { event_id: "e1", clicks: 1 }, { store }); // finish
 * await runWorker(worker, { event_id: "e1", clicks: 1 }, { store }); // duplicate
 * ```
 */
export async function runWorker<T, O extends WorkerOptions>(
  worker: WorkerDefinition<T, O>,
  body: unknown,
  options: RunWorkerOptions<O> = {},
): Promise<RunResult> {
  const loaded = await checked(worker as WorkerDefinition, options.options ?? {});
  if (loaded.definition.handle === undefined) {
    throw new TypeError("runWorker needs a worker with handle(); test handleBatch with runBatch");
  }
  const logs: LogRecord[] = [];
  const pool = options.child === undefined
    ? null
    : await childPool(worker as WorkerDefinition, options.child, options, recordingLogger(logs));
  const kit = testEntry(loaded, options, null, pool === null ? {} : { code: pool }, logs);
  await pool?.setup(kit.path.context);
  try {
    const outcome = await kit.path.runner.run(kitMessage(body, options, options.id ?? randomId()));
    return { outcome: testOutcome(outcome), published: kit.published, logs: kit.logs };
  } finally {
    await pool?.teardown();
  }
}

/**
 * A pool of one child process running the module at `url`, which must be
 * where `worker` comes from (or the child would test another worker).
 */
async function childPool(
  worker: WorkerDefinition,
  url: URL,
  options: RunWorkerOptions,
  workerLog: Logger,
): Promise<ChildPool> {
  const exported = (await import(url.href)).default;
  if (exported !== worker) {
    throw new TypeError(
      `runWorker's options.child must be the module whose default export is the worker given, ` +
        `got ${url.href}`,
    );
  }
  const dir = fileURLToPath(new URL(".", url));
  return new ChildPool({
    processes: 1,
    program: {
      execPath: Deno.execPath(),
      standalone: false,
      mainModule: new URL("./testing_child.ts", import.meta.url).href,
      denoConfig: findDenoConfig(dir),
      permissions: childPermissions([dir]),
    },
    init: {
      worker: url.href,
      options: { ...options.options },
      topic: options.topic ?? "test",
      channel: options.channel ?? "test",
      logLevel: "debug",
    },
    timeoutMs: options.timeoutMs ?? settingDefault("timeout"),
    killGraceMs: options.killGraceMs ?? 5_000,
    memoryLimitMib: null,
    log: silentLogger(),
    workerLog,
  });
}

/**
 * Runs `bodies` through a batch worker as the daemon would: each body on its
 * own through decode, validate or schema and the dedupe claim, then, in the
 * order they joined, in batches of the entry's size to `handleBatch` (the
 * daemon's batcher: per-item results, a throw, a wrong result, the
 * timeout), and gives each body's outcome. Bodies are as for
 * {@linkcode runWorker}; each gets a new message id.
 *
 * @example
 * ```ts ignore
 * import { assertEquals } from "jsr:@std/assert";
 * import { runBatch } from "@nsqworker/nsqworker/testing";
 * import worker from "../workers/demo/pageview_batch.ts";
 *
 * Deno.test("page views are stored in one batch", async () => {
 *   const { outcomes, batches } = await runBatch(worker, [
 *     { event_id: "e1", clicks: 2 },
 *     { event_id: "e2", clicks: 1 },
 *   ]);
 *   assertEquals(outcomes, [{ kind: "finish" }, { kind: "finish" }]);
 *   assertEquals(batches, [2]);
 * });
 * ```
 */
export async function runBatch<T, O extends WorkerOptions>(
  worker: WorkerDefinition<T, O>,
  bodies: readonly unknown[],
  options: RunBatchOptions<O> = {},
): Promise<RunBatchResult> {
  const loaded = await checked(worker as WorkerDefinition, options.options ?? {});
  if (loaded.definition.handleBatch === undefined) {
    throw new TypeError("runBatch needs a worker with handleBatch(); test handle with runWorker");
  }
  const messages = bodies.map((body) => kitMessage(body, options, randomId()));
  const batches: number[] = [];
  const { promise: allArrived, resolve: arrived } = Promise.withResolvers<void>();
  let pending = messages.length;
  const arrivedOne = () => {
    if (--pending === 0) arrived();
  };
  const joined = new Set<TaskMessage>();
  const batch = { size: options.batch?.size ?? null, wait: options.batch?.wait ?? null };
  const kit = testEntry(loaded, options, batch, {
    onBatch: (report) => batches.push(report.items),
    onJoin: (attempt) => {
      joined.add(attempt.message);
      arrivedOne();
    },
  });
  const { runner, batchers } = kit.path;
  const outcomes = messages.map(async (message) => {
    const outcome = runner.run(message);
    // A body that never joins a batch (invalid, duplicate, busy) has arrived once it has its outcome.
    if (!(outcome instanceof Promise)) {
      arrivedOne();
      return outcome;
    }
    return await outcome.finally(() => {
      if (!joined.has(message)) arrivedOne();
    });
  });
  if (messages.length === 0) arrived();
  await allArrived;
  // Every body has joined or left: the partial batch goes now, as its wait would have ended.
  for (const batcher of batchers) batcher.drain();
  return {
    outcomes: (await Promise.all(outcomes)).map(testOutcome),
    batches,
    published: kit.published,
    logs: kit.logs,
  };
}

/** One entry of the kit: its message path, and what it published and logged. */
interface TestEntry {
  readonly path: MessagePath;
  readonly published: PublishedMessage[];
  readonly logs: LogRecord[];
}

/**
 * The message path the daemon would build for `loaded` (with the entry
 * settings of `options`, the defaults otherwise), publishing and logging into
 * memory.
 */
function testEntry(
  loaded: LoadedWorker,
  options: RunWorkerOptions,
  batch: BatchConfig | null = null,
  hooks: Pick<MessagePathOptions, "onBatch" | "onJoin" | "code"> = {},
  logs: LogRecord[] = [],
): TestEntry {
  const published: PublishedMessage[] = [];
  const topic = options.topic ?? "test";
  const path = createMessagePath({
    entry: {
      topic,
      nsqTopic: topic,
      channel: options.channel ?? "test",
      maxAttempts: options.maxAttempts ?? settingDefault("max_attempts"),
      requeueDelayMs: settingDefault("requeue_delay"),
      maxRequeueDelayMs: settingDefault("max_requeue_delay"),
      timeoutMs: options.timeoutMs ?? settingDefault("timeout"),
      maxInFlight: settingDefault("max_in_flight"),
      batch,
    },
    worker: loaded,
    store: options.store ?? dedupeStore(),
    publisher: recordingPublisher(published),
    log: recordingLogger(logs),
    tracer: null,
    ...hooks,
  });
  return { path, published, logs };
}

/** A delivery of `body` as nsqd would make it, on no connection. */
function kitMessage(body: unknown, options: RunWorkerOptions, id: string): TaskMessage {
  const topic = options.topic ?? "test";
  const channel = options.channel ?? "test";
  return {
    id,
    attempts: options.attempts ?? 1,
    timestamp: Date.now(),
    body: rawBody(body),
    msgTimeoutMs: 60_000,
    touch() {},
    idScope: `${topic}/${channel}@test`,
  };
}

/** The worker after the shape and option checks of `check`, with its options merged. */
async function checked(
  worker: WorkerDefinition,
  entryOptions: Readonly<WorkerOptions>,
): Promise<LoadedWorker> {
  const { workers, issues } = await loadWorkers(
    [{ index: 0, name: WORKER_NAME, location: TEST_FILE, options: entryOptions }],
    {},
    () => Promise.resolve(worker),
  );
  const loaded = workers.get(0);
  if (loaded === undefined) {
    throw new WorkerLoadError(issues.map((issue) => issue.message).join("\n"));
  }
  return loaded;
}

function rawBody(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return new TextEncoder().encode(body);
  const json = JSON.stringify(body);
  if (json === undefined) {
    throw new TypeError(
      `runWorker needs a body of bytes, a string or a JSON value, got ${typeof body}`,
    );
  }
  return new TextEncoder().encode(json);
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The fields of an outcome that say what happens to the message; durations vary from run to run. */
function testOutcome(outcome: Outcome): TestOutcome {
  switch (outcome.kind) {
    case "dead":
      return { kind: "dead", reason: outcome.reason, error: outcome.error };
    case "retry":
      return { kind: "retry", error: outcome.error, delayMs: outcome.delayMs };
    case "busy":
      return { kind: "busy", delayMs: outcome.delayMs };
    default:
      return { kind: outcome.kind };
  }
}

function recordingLogger(logs: LogRecord[]): Logger {
  const at = (level: LogRecord["level"]) => (msg: string, properties?: Record<string, unknown>) => {
    logs.push({ level, msg, properties: { ...properties } });
  };
  return { debug: at("debug"), info: at("info"), warning: at("warning"), error: at("error") };
}

/** Records what the daemon's publisher would send, and refuses what it would refuse. */
function recordingPublisher(published: PublishedMessage[]): EntryPublisher {
  const record = (topic: string, bodies: readonly PublishBody[], delayMs?: number) => {
    let refusal: string | null;
    try {
      refusal = refusalOf(topic, bodies.map(encodeBody), delayMs ?? 0);
    } catch (error) {
      return Promise.reject(error);
    }
    if (refusal !== null) {
      return Promise.reject(new PublishError(`cannot publish to ${topic}: ${refusal}`));
    }
    for (const body of bodies) {
      published.push(delayMs === undefined ? { topic, body } : { topic, body, delayMs });
    }
    return Promise.resolve();
  };
  return {
    publish: (topic, body) => record(topic, [body]),
    publishMany: (topic, bodies) => record(topic, bodies),
    publishDeferred: (topic, body, delayMs) =>
      delayMs >= 0 ? record(topic, [body], delayMs) : Promise.reject(
        new PublishError(`publishDeferred delay must be 0 or more milliseconds, got ${delayMs}`),
      ),
    publishRaw: (topic, body) => record(topic, [body]),
  };
}

/** The kit's own lines about a child (a replacement, its stderr) are not the worker's logs. */
function silentLogger(): Logger {
  const ignore = () => {};
  return { debug: ignore, info: ignore, warning: ignore, error: ignore };
}
