/**
 * Test harness that runs a real nsqlookupd and nsqd on loopback, each with a
 * fresh temporary data directory, and talks to them over nsqd's HTTP API and a
 * minimal NSQ TCP consumer.
 *
 * ```ts
 * Deno.test("worker finishes a message", async () => {
 *   await using nsq = await startNsq();
 *   const topic = uniqueTopic("finish");
 *   await nsq.publish(topic, "hello");
 *   // ... run the code under test against nsq.nsqds[0].tcpAddress ...
 *   await waitFor(async () => (await nsq.channel(topic, "worker"))?.depth === 0);
 * });
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { nsqBin } from "../../tools/nsq_bin.ts";
import { trackChild, untrackChild } from "./children.ts";

/** One running (or stopped) nsqd of an {@linkcode NsqCluster}. */
export interface Nsqd {
  /** `127.0.0.1:PORT` for NSQ TCP clients. */
  readonly tcpAddress: string;
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly httpUrl: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  /** Its `--data-path`; kept across {@linkcode Nsqd.stop} and {@linkcode Nsqd.start}. */
  readonly dataDir: string;
  /** Whether the process is alive. */
  readonly running: boolean;
  /** Sends SIGTERM and waits for exit; nsqd then persists in-memory messages. No-op when stopped. */
  stop(): Promise<void>;
  /** Sends SIGKILL and waits for exit: in-memory messages are lost. No-op when stopped. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  start(): Promise<void>;
  /**
   * SIGSTOP: it stays registered with nsqlookupd and its port accepts
   * connections, but it answers nothing, like a host that hangs.
   */
  suspend(): void;
  /** SIGCONT after {@linkcode Nsqd.suspend}. */
  resume(): void;
}

/** The nsqlookupd of an {@linkcode NsqCluster}. */
export interface NsqLookupd {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly httpUrl: string;
  /** `127.0.0.1:PORT`, which every nsqd of the cluster registers with. */
  readonly tcpAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly running: boolean;
  /** Sends SIGTERM and waits for exit. No-op when stopped. */
  stop(): Promise<void>;
  /** Sends SIGKILL and waits for exit. No-op when stopped. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same ports. It starts empty: each nsqd registers
   * again when its lookup loop reconnects (up to 15 s later).
   */
  start(): Promise<void>;
}

/** Per-client counters from nsqd's `/stats`. */
export interface ClientStats {
  readonly client_id: string;
  readonly user_agent: string;
  readonly ready_count: number;
  readonly in_flight_count: number;
  readonly finish_count: number;
  readonly requeue_count: number;
  readonly message_count: number;
}

/** Per-channel counters from nsqd's `/stats`. */
export interface ChannelStats {
  readonly channel_name: string;
  /** Messages waiting to be sent (memory and disk), excluding in-flight and deferred ones. */
  readonly depth: number;
  readonly in_flight_count: number;
  /** Messages requeued with a delay that has not passed yet. */
  readonly deferred_count: number;
  readonly requeue_count: number;
  readonly timeout_count: number;
  readonly message_count: number;
  readonly clients: readonly ClientStats[];
}

/** Per-topic counters from nsqd's `/stats`. */
export interface TopicStats {
  readonly topic_name: string;
  /** Messages published to the topic since nsqd started. */
  readonly message_count: number;
  /** Messages held by the topic itself (it has no channel yet, or is paused). */
  readonly depth: number;
  readonly channels: readonly ChannelStats[];
}

/** The subset of nsqd's `GET /stats?format=json` that tests use. */
export interface NsqdStats {
  readonly topics: readonly TopicStats[];
}

/** Options of {@linkcode NsqCluster.readTopic}. */
export interface ReadTopicOptions {
  /** Fail when fewer messages arrived by then. Default 10 000. */
  timeoutMs?: number;
  /** Channel to consume from; created if missing. Default `"nsq_harness"`. */
  channel?: string;
  /** Index into {@linkcode NsqCluster.nsqds}. Default 0. */
  nsqd?: number;
}

/**
 * Running NSQ processes for one test. Every `nsqd` parameter below is an index
 * into {@linkcode NsqCluster.nsqds}, default 0.
 */
export interface NsqCluster extends AsyncDisposable {
  /** `null` when started with `lookupd: false`. */
  readonly lookupd: NsqLookupd | null;
  readonly nsqds: readonly Nsqd[];
  /**
   * Publishes one message over HTTP `/pub`. nsqd hands it to the topic's
   * channels a moment after this resolves, so wait for channel stats with
   * {@linkcode waitFor}.
   */
  publish(topic: string, body: string | Uint8Array, nsqd?: number): Promise<void>;
  /** Publishes messages in order over HTTP `/mpub`, in as many requests as nsqd's body limit needs. */
  publishMany(
    topic: string,
    bodies: readonly (string | Uint8Array)[],
    nsqd?: number,
  ): Promise<void>;
  createTopic(topic: string, nsqd?: number): Promise<void>;
  /** Creates the channel, and its topic if needed. */
  createChannel(topic: string, channel: string, nsqd?: number): Promise<void>;
  stats(nsqd?: number): Promise<NsqdStats>;
  /** Stats of one topic, or `null` when nsqd does not have it. */
  topic(topic: string, nsqd?: number): Promise<TopicStats | null>;
  /** Stats of one channel, or `null` when nsqd does not have it. */
  channel(topic: string, channel: string, nsqd?: number): Promise<ChannelStats | null>;
  /**
   * Consumes exactly `count` messages of a topic over NSQ TCP, finishes them and
   * returns their bodies in delivery order. Throws if they do not all arrive in
   * time. A channel that is new to a topic with other channels only sees
   * messages published after it was created.
   */
  readTopic(topic: string, count: number, options?: ReadTopicOptions): Promise<Uint8Array[]>;
  /** Stops every process and removes the temporary directories. Safe to call twice. */
  close(): Promise<void>;
}

/** Options of {@linkcode startNsq}. */
export interface StartNsqOptions {
  /** How many nsqd processes. Default 1. */
  nsqds?: number;
  /** Whether to run an nsqlookupd that every nsqd registers with. Default true. */
  lookupd?: boolean;
  /** Extra flags for every nsqd, after (so overriding) the harness's own, e.g. `"--msg-timeout=2s"`. */
  nsqdArgs?: readonly string[];
}

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 10_000;
/** nsqd's default `--max-rdy-count`; larger reads go in batches. */
const MAX_RDY = 2500;
/** Stays below nsqd's default `--max-body-size` of 5 MiB. */
const MPUB_BODY_LIMIT = 4 * 1024 * 1024;
const OUTPUT_HEAD_LINES = 10;
const OUTPUT_TAIL_LINES = 40;
const OUTPUT_LINE_CHARS = 2000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Starts nsqlookupd (unless `lookupd: false`) and `nsqds` nsqd processes on
 * loopback with free ports and fresh data directories, and resolves once each
 * answers `GET /ping`.
 *
 * @example
 * ```ts
 * await using nsq = await startNsq({ nsqds: 2, nsqdArgs: ["--msg-timeout=2s"] });
 * await nsq.publish(uniqueTopic("demo"), "hello", 1);
 * ```
 *
 * @throws {Error} when a process does not come up; the message ends with its output.
 */
export async function startNsq(options: StartNsqOptions = {}): Promise<NsqCluster> {
  const { nsqds: nsqdCount = 1, lookupd: withLookupd = true, nsqdArgs = [] } = options;
  if (!Number.isInteger(nsqdCount) || nsqdCount < 1) {
    throw new RangeError(
      `Cannot start NSQ as 'nsqds' must be a positive integer: current value is ${nsqdCount}`,
    );
  }
  const [nsqdBin, lookupdBin] = await Promise.all([
    nsqBin("nsqd"),
    withLookupd ? nsqBin("nsqlookupd") : undefined,
  ]);
  const root = await Deno.makeTempDir({ prefix: "nsqworker_nsq_" });

  const lookupd = lookupdBin === undefined
    ? null
    : new NsqServer("nsqlookupd", lookupdBin, "", (tcp, http) => [
      `--tcp-address=${HOST}:${tcp}`,
      `--http-address=${HOST}:${http}`,
      `--broadcast-address=${HOST}`,
    ]);
  // Distinct node IDs keep message IDs unique across the nsqds of a cluster,
  // which dedupe tests rely on.
  const firstNodeId = Math.floor(Math.random() * (1024 - nsqdCount));
  const nsqds: NsqServer[] = [];
  for (let i = 0; i < nsqdCount; i++) {
    const dataDir = join(root, `nsqd${i}`);
    await Deno.mkdir(dataDir);
    nsqds.push(
      new NsqServer(`nsqd ${i}`, nsqdBin, dataDir, (tcp, http) => [
        `--tcp-address=${HOST}:${tcp}`,
        `--http-address=${HOST}:${http}`,
        `--broadcast-address=${HOST}`,
        `--data-path=${dataDir}`,
        `--node-id=${firstNodeId + i}`,
        ...(lookupd ? [`--lookupd-tcp-address=${lookupd.tcpAddress}`] : []),
        ...nsqdArgs,
      ]),
    );
  }

  const cluster = new Cluster(root, lookupd, nsqds);
  try {
    await lookupd?.start();
    // allSettled, not all: close() below must not run while a start is still spawning.
    const results = await Promise.allSettled(nsqds.map((nsqd) => nsqd.start()));
    const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, "Cannot start several nsqds");
  } catch (error) {
    await cluster.close().catch(() => {/* the startup error is the one worth reporting */});
    throw error;
  }
  return cluster;
}

/**
 * Returns a fresh NSQ topic (or channel) name, `t_<prefix>_<random>`, at most
 * 64 characters. Characters NSQ does not allow in `prefix` become `_`.
 *
 * @example
 * ```ts
 * const topic = uniqueTopic("retry"); // "t_retry_3f9c0a1b2c4d"
 * ```
 */
export function uniqueTopic(prefix?: string): string {
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  if (prefix === undefined || prefix === "") return `t_${random}`;
  const room = 64 - "t__".length - random.length;
  const safe = prefix.replaceAll(/[^.a-zA-Z0-9_-]/g, "_").slice(0, room);
  return `t_${safe}_${random}`;
}

/** Options of {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Default 10 000. */
  timeoutMs?: number;
  /** Pause between checks. Default 25. */
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  message?: string;
}

/**
 * Polls `cond` until it returns true. An error thrown by `cond` ends the wait
 * and propagates.
 *
 * @example
 * ```ts
 * await waitFor(async () => (await nsq.topic(topic))?.depth === 0, { message: "topic drained" });
 * ```
 *
 * @throws {Error} when `cond` is still false after `timeoutMs`.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const { timeoutMs = 10_000, intervalMs = 25, message = "condition" } = options;
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, remaining)));
  }
}

/** A spawned NSQ process, its bounded output, and the addresses it logged. */
class ChildProc {
  readonly #child: Deno.ChildProcess;
  /** The first lines (flag errors, startup) and a bounded tail (what led to a crash). */
  readonly #head: string[] = [];
  readonly #tail: string[] = [];
  #dropped = 0;
  /** "TCP"/"HTTP" → "127.0.0.1:PORT", from nsq's "TCP: listening on ..." lines. */
  readonly listening = new Map<string, string>();
  status: Deno.CommandStatus | null = null;
  /** Resolves once the process exited and its output is drained. */
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(readonly label: string, bin: string, args: readonly string[]) {
    this.#child = new Deno.Command(bin, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.#child;
    trackChild(child);
    const status = child.status.then((status) => {
      this.status = status;
      untrackChild(child);
      return status;
    });
    this.exited = Promise.all([status, this.#drain(child.stdout), this.#drain(child.stderr)])
      .then(([status]) => status);
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#onLine(line);
    }
    if (partial !== "") this.#onLine(partial);
  }

  #onLine(line: string): void {
    const match = /\b(TCP|HTTP): listening on (\S+)/.exec(line);
    if (match?.[1] && match[2] && !this.listening.has(match[1])) {
      this.listening.set(match[1], match[2]);
    }
    const kept = line.length > OUTPUT_LINE_CHARS ? `${line.slice(0, OUTPUT_LINE_CHARS)}…` : line;
    if (this.#head.length < OUTPUT_HEAD_LINES) {
      this.#head.push(kept);
      return;
    }
    this.#tail.push(kept);
    if (this.#tail.length > OUTPUT_TAIL_LINES) {
      this.#tail.shift();
      this.#dropped++;
    }
  }

  /** The first and last lines of output, formatted for an error message. */
  describeOutput(): string {
    const skipped = this.#dropped === 0 ? [] : [`[… ${this.#dropped} lines …]`];
    const lines = [...this.#head, ...skipped, ...this.#tail];
    return `--- ${this.label} output ---\n${lines.join("\n")}\n--- end of ${this.label} output ---`;
  }

  /** Signals the process (unless it already exited) and waits for exit; escalates to SIGKILL. */
  async terminate(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    // A suspended process acts on no signal but SIGKILL until it runs again.
    this.#signal("SIGCONT");
    this.#signal(signal);
    if (signal === "SIGKILL") {
      await this.exited;
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), STOP_GRACE_MS)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#signal("SIGKILL");
      await this.exited;
    }
  }

  /** Sends `signal` unless the process already exited. */
  signal(signal: Deno.Signal): void {
    this.#signal(signal);
  }

  #signal(signal: Deno.Signal): void {
    if (this.status !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited between the check and the kill; exited resolves regardless.
    }
  }
}

/** nsqd or nsqlookupd: first started on port 0, later restarted on the ports it got. */
class NsqServer implements Nsqd, NsqLookupd {
  #proc: ChildProc | null = null;
  #starting = false;
  #tcpPort = 0;
  #httpPort = 0;

  constructor(
    readonly label: string,
    readonly bin: string,
    readonly dataDir: string,
    readonly args: (tcpPort: number, httpPort: number) => string[],
  ) {}

  get tcpPort(): number {
    return this.#tcpPort;
  }
  get httpPort(): number {
    return this.#httpPort;
  }
  get tcpAddress(): string {
    return `${HOST}:${this.#tcpPort}`;
  }
  get httpUrl(): string {
    return `http://${HOST}:${this.#httpPort}`;
  }
  get running(): boolean {
    return this.#proc !== null && this.#proc.status === null;
  }

  async start(): Promise<void> {
    if (this.#starting || this.running) {
      throw new Error(`Cannot start ${this.label} as it is already running on ${this.tcpAddress}`);
    }
    this.#starting = true;
    try {
      // It may have died on its own: collect it before reusing its ports.
      await this.#end("SIGKILL");
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (;;) {
        try {
          this.#proc = await this.#launch();
          return;
        } catch (error) {
          // A restart needs its old ports back; something else may hold one briefly.
          const portTaken = error instanceof Error &&
            error.message.includes("address already in use");
          if (!portTaken || performance.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } finally {
      this.#starting = false;
    }
  }

  async #launch(): Promise<ChildProc> {
    const proc = new ChildProc(this.label, this.bin, this.args(this.#tcpPort, this.#httpPort));
    try {
      await waitFor(() => {
        if (proc.status !== null) {
          throw new Error(`it exited with code ${proc.status.code} before listening`);
        }
        return proc.listening.has("TCP") && proc.listening.has("HTTP");
      }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 5, message: "it to listen" });
      this.#tcpPort = portOf(proc.listening.get("TCP"));
      this.#httpPort = portOf(proc.listening.get("HTTP"));
      await waitFor(() => {
        if (proc.status !== null) throw new Error(`it exited with code ${proc.status.code}`);
        return ping(this.httpUrl);
      }, {
        timeoutMs: START_TIMEOUT_MS,
        intervalMs: 10,
        message: `GET ${this.httpUrl}/ping to answer OK`,
      });
    } catch (error) {
      await proc.terminate("SIGKILL");
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`Cannot start ${this.label}: ${reason}\n${proc.describeOutput()}`, {
        cause: error,
      });
    }
    return proc;
  }

  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  suspend(): void {
    this.#proc?.signal("SIGSTOP");
  }

  resume(): void {
    this.#proc?.signal("SIGCONT");
  }

  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const proc = this.#proc;
    if (proc === null) return;
    await proc.terminate(signal);
    this.#proc = null;
  }
}

class Cluster implements NsqCluster {
  #closing: Promise<void> | undefined;

  constructor(
    readonly root: string,
    readonly lookupd: NsqServer | null,
    readonly nsqds: readonly NsqServer[],
  ) {}

  #nsqd(index = 0): NsqServer {
    const nsqd = this.nsqds[index];
    if (nsqd === undefined) {
      throw new RangeError(
        `Cannot use nsqd ${index} as the cluster has nsqds 0..${this.nsqds.length - 1}`,
      );
    }
    return nsqd;
  }

  async publish(topic: string, body: string | Uint8Array, nsqd?: number): Promise<void> {
    const url = `${this.#nsqd(nsqd).httpUrl}/pub?topic=${encodeURIComponent(topic)}`;
    await request("POST", url, `publish to topic "${topic}"`, body);
  }

  async publishMany(
    topic: string,
    bodies: readonly (string | Uint8Array)[],
    nsqd?: number,
  ): Promise<void> {
    const url = `${this.#nsqd(nsqd).httpUrl}/mpub?binary=true&topic=${encodeURIComponent(topic)}`;
    const messages = bodies.map((body) => typeof body === "string" ? encoder.encode(body) : body);
    let start = 0;
    while (start < messages.length) {
      // Binary MPUB: message count, then each message as size + bytes, all int32 big-endian.
      let size = 4;
      let end = start;
      while (end < messages.length) {
        const next = 4 + (messages[end]?.length ?? 0);
        // Always take one message, so an oversized one reaches nsqd and fails with its error.
        if (end > start && size + next > MPUB_BODY_LIMIT) break;
        size += next;
        end++;
      }
      const payload = new Uint8Array(size);
      const view = new DataView(payload.buffer);
      view.setInt32(0, end - start);
      let offset = 4;
      for (const message of messages.slice(start, end)) {
        view.setInt32(offset, message.length);
        payload.set(message, offset + 4);
        offset += 4 + message.length;
      }
      await request("POST", url, `publish ${end - start} messages to topic "${topic}"`, payload);
      start = end;
    }
  }

  async createTopic(topic: string, nsqd?: number): Promise<void> {
    const url = `${this.#nsqd(nsqd).httpUrl}/topic/create?topic=${encodeURIComponent(topic)}`;
    await request("POST", url, `create topic "${topic}"`);
  }

  async createChannel(topic: string, channel: string, nsqd?: number): Promise<void> {
    // nsqd's /channel/create answers TOPIC_NOT_FOUND for a topic it does not have yet.
    await this.createTopic(topic, nsqd);
    const url = `${this.#nsqd(nsqd).httpUrl}/channel/create?topic=${
      encodeURIComponent(topic)
    }&channel=${encodeURIComponent(channel)}`;
    await request("POST", url, `create channel "${channel}" of topic "${topic}"`);
  }

  async stats(nsqd?: number): Promise<NsqdStats> {
    const url = `${this.#nsqd(nsqd).httpUrl}/stats?format=json`;
    const raw = JSON.parse(await request("GET", url, "read stats")) as RawStats;
    return { topics: (raw.topics ?? []).map(toTopicStats) };
  }

  async topic(topic: string, nsqd?: number): Promise<TopicStats | null> {
    return (await this.stats(nsqd)).topics.find((t) => t.topic_name === topic) ?? null;
  }

  async channel(topic: string, channel: string, nsqd?: number): Promise<ChannelStats | null> {
    const stats = await this.topic(topic, nsqd);
    return stats?.channels.find((c) => c.channel_name === channel) ?? null;
  }

  async readTopic(
    topic: string,
    count: number,
    options: ReadTopicOptions = {},
  ): Promise<Uint8Array[]> {
    const { timeoutMs = 10_000, channel = "nsq_harness", nsqd } = options;
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(
        `Cannot read topic "${topic}" as 'count' must be a non-negative integer: current value is ${count}`,
      );
    }
    if (count === 0) return [];
    return await consume(this.#nsqd(nsqd).tcpPort, topic, channel, count, timeoutMs);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const errors: unknown[] = [];
    // nsqds first, so that none logs lookupd connection errors while shutting down.
    for (const result of await Promise.allSettled(this.nsqds.map((nsqd) => nsqd.stop()))) {
      if (result.status === "rejected") errors.push(result.reason);
    }
    await this.lookupd?.stop().catch((error) => errors.push(error));
    await Deno.remove(this.root, { recursive: true }).catch((error) => errors.push(error));
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "Cannot close NSQ cleanly");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function ping(httpUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${httpUrl}/ping`);
    return response.ok && (await response.text()) === "OK";
  } catch {
    // Not accepting connections yet.
    return false;
  }
}

/** Sends an HTTP request to nsqd and returns the body; throws with nsqd's answer unless 2xx. */
async function request(
  method: "GET" | "POST",
  url: string,
  action: string,
  body?: string | Uint8Array,
): Promise<string> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = toBodyInit(body);
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) {
    throw new Error(
      `Cannot ${action} as ${method} ${url} answered ${response.status}: ${text.trim()}`,
    );
  }
  return text;
}

/** fetch takes strings, and bytes only when backed by a plain ArrayBuffer. */
function toBodyInit(body: string | Uint8Array): string | Uint8Array<ArrayBuffer> {
  if (typeof body === "string" || body.buffer instanceof ArrayBuffer) {
    return body as string | Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(body);
}

function portOf(address: string | undefined): number {
  const port = Number(address?.slice(address.lastIndexOf(":") + 1));
  if (!Number.isInteger(port) || port <= 0) {
    throw new Error(`Cannot parse a port from the logged address: current value is "${address}"`);
  }
  return port;
}

interface RawClient {
  client_id?: string;
  user_agent?: string;
  ready_count?: number;
  in_flight_count?: number;
  finish_count?: number;
  requeue_count?: number;
  message_count?: number;
}
interface RawChannel {
  channel_name?: string;
  depth?: number;
  in_flight_count?: number;
  deferred_count?: number;
  requeue_count?: number;
  timeout_count?: number;
  message_count?: number;
  clients?: RawClient[] | null;
}
interface RawTopic {
  topic_name?: string;
  message_count?: number;
  depth?: number;
  channels?: RawChannel[] | null;
}
interface RawStats {
  topics?: RawTopic[] | null;
}

function toTopicStats(t: RawTopic): TopicStats {
  return {
    topic_name: t.topic_name ?? "",
    message_count: t.message_count ?? 0,
    depth: t.depth ?? 0,
    channels: (t.channels ?? []).map((c) => ({
      channel_name: c.channel_name ?? "",
      depth: c.depth ?? 0,
      in_flight_count: c.in_flight_count ?? 0,
      deferred_count: c.deferred_count ?? 0,
      requeue_count: c.requeue_count ?? 0,
      timeout_count: c.timeout_count ?? 0,
      message_count: c.message_count ?? 0,
      clients: (c.clients ?? []).map((k) => ({
        client_id: k.client_id ?? "",
        user_agent: k.user_agent ?? "",
        ready_count: k.ready_count ?? 0,
        in_flight_count: k.in_flight_count ?? 0,
        finish_count: k.finish_count ?? 0,
        requeue_count: k.requeue_count ?? 0,
        message_count: k.message_count ?? 0,
      })),
    })),
  };
}

const FRAME_RESPONSE = 0;
const FRAME_ERROR = 1;
const FRAME_MESSAGE = 2;

/**
 * A minimal NSQ TCP consumer. It holds each batch of up to RDY messages until
 * the whole batch arrived, so nsqd never sends more than `count`, then FINs the
 * batch; the final `CLS` round trip ensures nsqd processed every FIN before this
 * returns, so stats read afterwards already show them.
 */
async function consume(
  port: number,
  topic: string,
  channel: string,
  count: number,
  timeoutMs: number,
): Promise<Uint8Array[]> {
  const conn = await Deno.connect({ hostname: HOST, port });
  const frames = new FrameReader(conn);
  const bodies: Uint8Array[] = [];
  let timedOut = false;
  // Closing the connection is the only way to interrupt a pending read.
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  const send = (command: string) => writeAll(conn, encoder.encode(command));
  const fail = (command: string, answer: string) =>
    new Error(`Cannot read topic "${topic}" as nsqd answered ${command} with ${answer}`);
  /** The next frame that is not a heartbeat (those get their NOP); error frames throw. */
  const next = async (command: string): Promise<{ type: number; data: Uint8Array }> => {
    for (;;) {
      const frame = await frames.next();
      if (frame.type === FRAME_ERROR) throw fail(command, decoder.decode(frame.data));
      if (frame.type !== FRAME_RESPONSE || decoder.decode(frame.data) !== "_heartbeat_") {
        return frame;
      }
      await send("NOP\n");
    }
  };
  try {
    await send(`  V2SUB ${topic} ${channel}\n`);
    const subscribed = await next("SUB");
    const answer = decoder.decode(subscribed.data);
    if (subscribed.type !== FRAME_RESPONSE || answer !== "OK") throw fail("SUB", answer);
    let batch = Math.min(count, MAX_RDY);
    await send(`RDY ${batch}\n`);
    while (bodies.length < count) {
      const ids: string[] = [];
      while (ids.length < batch) {
        const { type, data } = await next("FIN/RDY");
        if (type !== FRAME_MESSAGE) continue;
        // Message: timestamp int64, attempts uint16, 16-byte ASCII id, body.
        ids.push(decoder.decode(data.subarray(10, 26)));
        bodies.push(data.slice(26));
      }
      const fins = ids.map((id) => `FIN ${id}\n`).join("");
      // The new RDY goes ahead of the FINs: nsqd refills up to RDY as soon as
      // in-flight drops, so it must already be the smaller, remaining count.
      batch = Math.min(count - bodies.length, MAX_RDY);
      await send(batch === 0 ? `RDY 0\n${fins}CLS\n` : `RDY ${batch}\n${fins}`);
    }
    for (;;) {
      // A message nsqd sent before it saw RDY 0 is skipped; the close requeues it.
      const { type, data } = await next("FIN/CLS");
      if (type !== FRAME_RESPONSE) continue;
      const closing = decoder.decode(data);
      if (closing === "CLOSE_WAIT") return bodies;
      throw fail("CLS", closing);
    }
  } catch (error) {
    if (timedOut) {
      throw new Error(
        `Cannot read topic "${topic}" (channel "${channel}") as only ${bodies.length} of ${count} ` +
          `messages arrived within ${timeoutMs} ms`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Splits an NSQ TCP stream into frames: size int32 BE, type int32 BE, data (size - 4 bytes). */
class FrameReader {
  #buffer = new Uint8Array(0);
  #offset = 0;

  constructor(readonly conn: Deno.Conn) {}

  async next(): Promise<{ type: number; data: Uint8Array }> {
    await this.#fill(4);
    const size = this.#view(4).getInt32(0);
    await this.#fill(4 + size);
    const frame = this.#view(4 + size);
    const type = frame.getInt32(4);
    const data = this.#buffer.subarray(this.#offset + 8, this.#offset + 4 + size);
    this.#offset += 4 + size;
    return { type, data };
  }

  #view(length: number): DataView {
    return new DataView(this.#buffer.buffer, this.#buffer.byteOffset + this.#offset, length);
  }

  async #fill(length: number): Promise<void> {
    while (this.#buffer.length - this.#offset < length) {
      const chunk = new Uint8Array(64 * 1024);
      const read = await this.conn.read(chunk);
      if (read === null) throw new Error("nsqd closed the connection");
      const rest = this.#buffer.subarray(this.#offset);
      const merged = new Uint8Array(rest.length + read);
      merged.set(rest);
      merged.set(chunk.subarray(0, read), rest.length);
      this.#buffer = merged;
      this.#offset = 0;
    }
  }
}
