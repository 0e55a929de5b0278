/**
 * The dedupe store shared across hosts (`dedupe.store: redis://…`), on the
 * official Redis client `@redis/client` (node-redis without its module
 * packages).
 *
 * @module
 */

import { createClient, createCluster } from "@redis/client";
import { createHash } from "node:crypto";
import type { Logger } from "../worker/worker.ts";
import { ClaimTokens } from "./claim_token.ts";
import { Deadlines } from "./deadlines.ts";
import type { Claim, DedupeStore } from "./store.ts";
import { errorText } from "../error_text.ts";
import { redact } from "../redact.ts";
import { retryDelay } from "../backoff.ts";
import { TIMED_OUT, withTimeout } from "../with_timeout.ts";
import { clusterSlot } from "./cluster_slot.ts";
import { isRedisClusterUrl, nodeUrl, parseRedisClusterUrl } from "../config/redis_cluster_url.ts";
import { listenToTlsSocketErrors, TLS_SOCKET_ERRORS } from "./tls_error_listener.ts";

/** TLS material for `rediss://` and `rediss-cluster://` (`dedupe.tls`, files already read). */
export interface RedisTlsOptions {
  /** PEM CA certificates that sign the server's certificate (default: the system's). */
  readonly ca?: string;
  /** PEM client certificate, with `key`, for servers that verify clients (mutual TLS). */
  readonly cert?: string;
  readonly key?: string;
  /** Accept any server certificate (testing only). Default false. */
  readonly insecureSkipVerify?: boolean;
}

/** Options of {@linkcode RedisStore}. */
export interface RedisStoreOptions {
  /**
   * `redis://[user:pass@]host:port[/db]` (or `rediss://` for TLS), or
   * `redis-cluster://[user:pass@]host:port[,host:port…]` (or
   * `rediss-cluster://`) for a Redis Cluster.
   */
  readonly url: string;
  /** TLS settings of a `rediss://` or `rediss-cluster://` URL; refused with a plaintext one. */
  readonly tls?: RedisTlsOptions;
  /** How long a done key is remembered, in milliseconds. */
  readonly ttlMs: number;
  /** What a message gets when a claim fails (`dedupe.on_store_error`). */
  readonly onError?: "retry" | "process";
  /** Where connection losses and recoveries are reported (the password never is). */
  readonly log?: Logger;
  /** A call that redis has not answered by then fails (default 1000 ms). */
  readonly commandTimeoutMs?: number;
  /** Connection attempts give up after this long, then retry (default 2000 ms). */
  readonly connectTimeoutMs?: number;
  /** The most time between reconnection attempts (default 2000 ms). */
  readonly maxReconnectDelayMs?: number;
  /** Prepended to every key (default `nsqworker:dedupe:`). */
  readonly keyPrefix?: string;
  /**
   * Claims with the Lua script rather than `SET … NX … GET` from the start
   * (default false: redis before 7.0 is detected at the first claim anyway).
   */
  readonly claimScript?: boolean;
}

/** The value of a done key; claim tokens start with `c`, so never equal it. */
const DONE_MARK = "d";
/** Calls waiting for redis at once, beyond which new ones fail at once (a hung server). */
const MAX_QUEUED_COMMANDS = 10_000;
/** The first wait before connecting again; it doubles up to `maxReconnectDelayMs`. */
const FIRST_RECONNECT_DELAY_MS = 50;

/** A Lua script, run by its SHA1 (EVALSHA) and sent whole only when redis does not have it. */
interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * The claim for redis before 7.0, which refuses `SET … NX … GET`: KEYS[1] the
 * key, ARGV token, lease (ms), done mark → 1 claimed, 2 done, 0 busy.
 */
const CLAIM = script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[3] then return 2 end
return 0`);
/** Compare-and-delete: only the claim's owner may release it. */
const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);
/** Compare-and-extend: only the claim's owner may renew it. */
const RENEW = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/**
 * The claims and done marks of one turn, in the order they were made:
 * KEYS the keys; ARGV[1] the done mark, ARGV[2] the ttl (ms), then for the
 * i-th key ARGV[1 + 2i] its claim token ("" for a done mark) and ARGV[2 + 2i]
 * its lease (ms) → per key 1 claimed, 2 done, 0 busy (0 for a done mark).
 */
const BATCH = script(`
local mark, ttl, out = ARGV[1], ARGV[2], {}
for i, key in ipairs(KEYS) do
  local token = ARGV[1 + 2 * i]
  if token == '' then
    redis.call('SET', key, mark, 'PX', ttl)
    out[i] = 0
  elseif redis.call('SET', key, token, 'NX', 'PX', ARGV[2 + 2 * i]) then
    out[i] = 1
  elseif redis.call('GET', key) == mark then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out`);

/** What the store sends commands through: one server, or a cluster that routes by key. */
interface Connection {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  /** Sends `args`; a cluster routes it to the master of `firstKey`'s slot. */
  send(firstKey: string, args: string[]): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
}

/** A claim or done mark waiting for its turn's batch; `token` is "" for a done mark. */
interface Queued {
  readonly key: string;
  readonly token: string;
  readonly lease: string;
  readonly resolve: (reply: number) => void;
  readonly reject: (error: Error) => void;
}

function leaseArg(leaseMs: number): string {
  return String(Math.ceil(leaseMs));
}

const DONE_CLAIM: Claim = Object.freeze({ status: "done" });
const BUSY_CLAIM: Claim = Object.freeze({ status: "busy" });

/**
 * A {@linkcode DedupeStore} in redis, shared by every daemon that points to
 * the same server and database: a key is `<keyPrefix><scope>:<key>`; its
 * value is the claim's token while a handler runs (expiring with the lease)
 * and a done mark once handled (expiring with the ttl). Each call is one
 * round trip, atomic on the server:
 *
 * - claim: `SET key token NX PX lease GET`: the key is taken only if it is
 *   free, and the answer tells a done key from a busy one (redis before 7.0
 *   refuses `NX` with `GET`: a Lua script does the same there);
 * - done: `SET key done PX ttl`, whoever holds the claim (the work happened);
 * - release, renew: compare the token, then `DEL` or `PEXPIRE` (Lua).
 *
 * The claims and done marks made in the same turn of the event loop go out
 * as one call of a Lua script that does each in order (a lone one as the
 * plain command above), so that a turn costs redis and the client one
 * command rather than one per message; release and renew, which are rare,
 * go out on their own, in the same write (the client pipelines a turn). The client reconnects by itself; while it is
 * disconnected calls fail at once instead of queueing, and a call redis does
 * not answer within `commandTimeoutMs` fails, so a message never waits on an
 * outage longer than that.
 *
 * With `redis-cluster://` the keys keep the same names, without hash tags:
 * each call touches one key, so the keys of one entry spread over every
 * master (a hash tag per scope would put an entry's whole load on one). A
 * turn's batch is therefore split by slot, because a script may only touch
 * keys of one slot: keys that share a slot go as one script call, and a lone
 * key as its plain command; the cluster client sends each to its master,
 * pipelined per connection, and follows MOVED and ASK redirections while
 * slots migrate. When a master fails, calls to its slots fail (and the
 * message gets `on_store_error`) until a replica takes over; a claim or done
 * mark the failed master acknowledged but had not yet replicated is lost
 * with it, so that event may be handled once more, never lost.
 *
 * @example
 * ```ts
 * import { RedisStore } from "./redis_store.ts";
 *
 * const store = new RedisStore({ url: "redis://127.0.0.1:6379/0", ttlMs: 86_400_000 });
 * const claim = await store.claim("pageviews/counter", "event-1", 70_000);
 * if (claim.status === "claimed") await store.done("pageviews/counter", "event-1", claim.token);
 * await store.close();
 * ```
 */
export class RedisStore implements DedupeStore {
  readonly onError: "retry" | "process";
  readonly #client: Connection;
  /** Whether the URL names a cluster: batches are then split by slot. */
  readonly #cluster: boolean;
  readonly #tls: boolean;
  /** The cluster's connection attempt waiting to be retried (the single client retries by itself). */
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #ttl: string;
  readonly #prefix: string;
  readonly #commandTimeoutMs: number;
  readonly #deadlines: Deadlines;
  readonly #log: Logger | undefined;
  /** The password as written in the URL and decoded: neither may appear in a message. */
  readonly #secrets: readonly string[];
  readonly #where: string;
  readonly #tokens = new ClaimTokens();
  /** Resolves at the next connection: calls made while connecting wait for it (within their timeout). */
  #nextReady = Promise.withResolvers<void>();
  /**
   * Why the connection is down, once the client reported an error and until
   * it is ready again; calls meanwhile fail at once with it.
   */
  #down: string | null = null;
  #connectedOnce = false;
  /** False once redis refused `SET … NX … GET` (before 7.0): claims use the Lua script then. */
  #setGet = true;
  /** When the client's pending wait before its next connection attempt ends (performance.now()). */
  #reconnectAt = 0;
  #closed: Promise<void> | null = null;
  /** The claims and done marks of this turn, sent when it ends. */
  #queued: Queued[] = [];

  /** Starts connecting in the background; throws a `RangeError` on bad options or URL. */
  constructor(options: RedisStoreOptions) {
    const {
      url,
      ttlMs,
      commandTimeoutMs = 1_000,
      connectTimeoutMs = 2_000,
      maxReconnectDelayMs = 2_000,
    } = options;
    const cluster = isRedisClusterUrl(url) ? parseRedisClusterUrl(url) : null;
    if (typeof cluster === "string") {
      throw new RangeError(
        `Cannot create the redis dedupe store as 'url' must be a redis-cluster:// URL ${cluster}: current value is ${
          redact(url)
        }`,
      );
    }
    let parsed: URL | null = null;
    if (cluster === null) {
      try {
        parsed = new URL(url);
      } catch {
        throw new RangeError(
          `Cannot create the redis dedupe store as 'url' must be a redis:// URL: current value is ${
            redact(url)
          }`,
        );
      }
    }
    this.#cluster = cluster !== null;
    this.#tls = cluster?.tls ?? parsed?.protocol === "rediss:";
    if (options.tls !== undefined && !this.#tls) {
      throw new RangeError(
        `Cannot create the redis dedupe store as TLS settings need a rediss:// or rediss-cluster:// URL: current value is ${
          redact(url)
        }`,
      );
    }
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
      throw new RangeError(
        `Cannot create the redis dedupe store as 'ttlMs' must be a positive integer: current value is ${ttlMs}`,
      );
    }
    if (!(commandTimeoutMs > 0)) {
      throw new RangeError(
        `Cannot create the redis dedupe store as 'commandTimeoutMs' must be positive: current value is ${commandTimeoutMs}`,
      );
    }
    this.onError = options.onError ?? "retry";
    this.#ttl = String(ttlMs);
    this.#prefix = options.keyPrefix ?? "nsqworker:dedupe:";
    this.#setGet = !options.claimScript;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#deadlines = new Deadlines(
      commandTimeoutMs,
      () => new Error(`redis ${this.#where} did not answer within ${commandTimeoutMs}ms`),
    );
    this.#log = options.log;
    const password = cluster?.password ?? parsed!.password;
    this.#secrets = [...new Set([password, safeDecode(password)])]
      .filter((secret) => secret !== "");
    this.#where = cluster !== null
      ? `cluster ${cluster.nodes.map((node) => `${node.host}:${node.port}`).join(",")}`
      : `${parsed!.host}${parsed!.pathname === "/" ? "" : parsed!.pathname}`;
    const tls = options.tls;
    if (this.#tls) listenToTlsSocketErrors();
    const socket = {
      connectTimeout: connectTimeoutMs,
      // Never give up: the store recovers whenever redis comes back.
      reconnectStrategy: (retries: number) => {
        const delayMs = retryDelay(retries + 1, FIRST_RECONNECT_DELAY_MS, maxReconnectDelayMs);
        this.#reconnectAt = performance.now() + delayMs;
        return delayMs;
      },
      // TLS only, never a plaintext fallback: a server that does not speak it fails the handshake.
      ...(this.#tls
        ? {
          tls: true as const,
          rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
          ...(tls?.ca === undefined ? {} : { ca: tls.ca }),
          ...(tls?.cert === undefined ? {} : { cert: tls.cert }),
          ...(tls?.key === undefined ? {} : { key: tls.key }),
          // An error the client was not listening for (a refused handshake) still counts as an outage.
          [TLS_SOCKET_ERRORS]: (error: unknown, heardByClient: boolean) => {
            if (!heardByClient) this.#lost(error);
          },
        }
        : {}),
    };
    const common = {
      disableOfflineQueue: true,
      commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
      socket,
    };
    if (cluster === null) {
      const client = createClient({ url, ...common });
      client.on("error", (error: unknown) => this.#lost(error));
      client.on("ready", () => this.#ready());
      this.#client = {
        get isReady() {
          return client.isReady;
        },
        get isOpen() {
          return client.isOpen;
        },
        send: (_firstKey, args) => client.sendCommand(args),
        close: () => client.close(),
        destroy: () => client.destroy(),
      };
      // connect() resolves once ready, retrying meanwhile; it only rejects when closed first.
      client.connect().catch(() => {});
      return;
    }
    const client = createCluster({
      rootNodes: cluster.nodes.map((node) => ({ url: nodeUrl(cluster, node) })),
      // Every connection, to the seed nodes and to those discovered, is made from these.
      defaults: {
        ...common,
        ...(cluster.username === "" ? {} : { username: cluster.username }),
        ...(cluster.password === "" ? {} : { password: cluster.password }),
      },
    });
    client.on("error", (error: unknown) => this.#lost(error));
    client.on("node-error", (error: unknown) => this.#lost(error));
    client.on("node-ready", () => {
      if (client.isReady) this.#ready();
    });
    this.#client = {
      get isReady() {
        return client.isReady;
      },
      get isOpen() {
        return client.isOpen;
      },
      send: (firstKey, args) => client.sendCommand(firstKey, false, args),
      close: () => client.close(),
      destroy: () => client.destroy(),
    };
    this.#connectCluster(client, 0, maxReconnectDelayMs);
  }

  /**
   * Learns the cluster's slots from the seed nodes; the cluster client
   * gives up when none answers, so this tries again until it is closed.
   */
  #connectCluster(
    client: { connect(): Promise<unknown>; readonly isReady: boolean },
    retries: number,
    maxDelayMs: number,
  ): void {
    client.connect().then(
      () => this.#ready(),
      (error) => {
        if (this.#closed !== null) return;
        this.#lost(error);
        const delayMs = retryDelay(retries + 1, FIRST_RECONNECT_DELAY_MS, maxDelayMs);
        this.#reconnectAt = performance.now() + delayMs;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          if (this.#closed === null) this.#connectCluster(client, retries + 1, maxDelayMs);
        }, delayMs);
      },
    );
  }

  /** Where the store points: `host:port/db`, without credentials. */
  get where(): string {
    return this.#where;
  }

  /** Whether the client is connected and can answer now. */
  get connected(): boolean {
    return this.#client.isReady;
  }

  /** Claims `key` in `scope` for `leaseMs`, unless it is done or claimed by a live lease. */
  async claim(scope: string, key: string, leaseMs: number): Promise<Claim> {
    const token = this.#tokens.next();
    const reply = await this.#enqueue(this.#key(scope, key), token, leaseArg(leaseMs));
    if (reply === 1) return { status: "claimed", token };
    return reply === 2 ? DONE_CLAIM : BUSY_CLAIM;
  }

  /** Marks `key` done for the ttl, whoever holds its claim. */
  async done(scope: string, key: string, _token: string): Promise<void> {
    await this.#enqueue(this.#key(scope, key), "", "");
  }

  /** Queues a claim (or, with `token` "", a done mark) for the end of this turn. */
  #enqueue(key: string, token: string, lease: string): Promise<number> {
    if (this.#closed !== null) {
      return Promise.reject(new Error(`the redis dedupe store (${this.#where}) is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    if (this.#queued.push({ key, token, lease, resolve, reject }) === 1) {
      queueMicrotask(this.#flush);
    }
    return promise;
  }

  readonly #flush = (): void => {
    const queued = this.#queued;
    if (queued.length === 0) return;
    this.#queued = [];
    if (!this.#cluster || queued.length === 1) {
      this.#sendGroup(queued);
      return;
    }
    // A script may touch the keys of one slot only.
    const bySlot = new Map<number, Queued[]>();
    for (const call of queued) {
      const slot = clusterSlot(call.key);
      const group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, [call]);
      else group.push(call);
    }
    for (const group of bySlot.values()) this.#sendGroup(group);
  };

  #sendGroup(queued: Queued[]): void {
    const sent = queued.length === 1 ? this.#single(queued[0]!) : this.#batch(queued);
    sent.then(
      (replies) => queued.forEach((call, i) => call.resolve(replies[i]!)),
      (error) => {
        const redacted = this.#redacted(error);
        for (const call of queued) call.reject(redacted);
      },
    );
  }

  async #batch(queued: readonly Queued[]): Promise<number[]> {
    const args = [DONE_MARK, this.#ttl];
    for (const call of queued) args.push(call.token, call.lease);
    const replies = await this.#eval(BATCH, queued.map((call) => call.key), args);
    if (!Array.isArray(replies) || replies.length !== queued.length) {
      throw new Error(
        `redis ${this.#where} answered a batch of ${queued.length} with ${JSON.stringify(replies)}`,
      );
    }
    return replies as number[];
  }

  /** A lone claim or done mark, as a plain command: cheaper for redis than a script. */
  async #single(call: Queued): Promise<number[]> {
    if (call.token === "") {
      await this.#send(call.key, ["SET", call.key, DONE_MARK, "PX", this.#ttl]);
      return [0];
    }
    return [await this.#claimOne(call.key, call.token, call.lease)];
  }

  /** 1 claimed, 2 done, 0 busy. */
  async #claimOne(id: string, token: string, lease: string): Promise<number> {
    if (this.#setGet) {
      try {
        // Sets the key only if it is free, and answers what it held: nil, the done mark or a token.
        const held = await this.#send(id, ["SET", id, token, "NX", "PX", lease, "GET"]);
        if (held === null) return 1;
        return held === DONE_MARK ? 2 : 0;
      } catch (error) {
        if (!(error instanceof Error) || !/syntax error/i.test(error.message)) throw error;
        this.#setGet = false;
      }
    }
    return await this.#eval(CLAIM, [id], [token, lease, DONE_MARK]) as number;
  }

  /** Deletes the claim on `key` if `token` still owns it. */
  async release(scope: string, key: string, token: string): Promise<void> {
    try {
      await this.#eval(RELEASE, [this.#key(scope, key)], [token]);
    } catch (error) {
      throw this.#redacted(error);
    }
  }

  /** Extends the claim on `key` to `leaseMs` from now if `token` still owns it. */
  async renew(scope: string, key: string, token: string, leaseMs: number): Promise<void> {
    try {
      await this.#eval(RENEW, [this.#key(scope, key)], [token, leaseArg(leaseMs)]);
    } catch (error) {
      throw this.#redacted(error);
    }
  }

  /**
   * Waits for the replies still due (up to the command timeout), then
   * disconnects; safe to call twice.
   */
  close(): Promise<void> {
    // What this turn queued goes out first; close() waits for the answers.
    if (this.#closed === null) this.#flush();
    return this.#closed ??= this.#close();
  }

  async #close(): Promise<void> {
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    if (!client.isOpen) return;
    try {
      // close() lets the replies in flight arrive; destroy() when redis does not answer them.
      if (await withTimeout(client.close(), this.#commandTimeoutMs) === TIMED_OUT) client.destroy();
    } catch {
      if (client.isOpen) client.destroy();
    } finally {
      this.#deadlines.clear(new Error(`the redis dedupe store (${this.#where}) is closed`));
    }
    // The client cannot cancel the wait before its next attempt; it gives up when that ends.
    const waitMs = this.#reconnectAt - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs) + 1));
  }

  #key(scope: string, key: string): string {
    return this.#prefix + scope + ":" + key;
  }

  async #eval(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await this.#send(keys[0]!, ["EVALSHA", script.sha, ...rest]);
    } catch (error) {
      // A restarted or flushed redis forgot the script: EVAL sends it and caches it again.
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await this.#send(keys[0]!, ["EVAL", script.source, ...rest]);
    }
  }

  /** Sends one command; it fails after the command timeout. Errors may name secrets: redact them. */
  #send(firstKey: string, args: string[]): Promise<unknown> {
    if (this.#closed !== null) {
      return Promise.reject(new Error(`the redis dedupe store (${this.#where}) is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    if (this.#client.isReady) {
      this.#client.send(firstKey, args).then(resolve, reject);
    } else if (this.#down !== null) {
      reject(new Error(`redis ${this.#where} is unreachable: ${this.#down}`));
      return promise;
    } else {
      // Connecting, and no error yet: wait for it, but never send a call given up on.
      const deadline = performance.now() + this.#commandTimeoutMs;
      this.#nextReady.promise.then(() => {
        if (performance.now() < deadline) this.#client.send(firstKey, args).then(resolve, reject);
      });
    }
    this.#deadlines.add(reject);
    return promise;
  }

  /** The client lost its connection, or failed to make one: reported once per outage. */
  #lost(error: unknown): void {
    if (this.#closed !== null) return;
    const reported = this.#down !== null;
    this.#down = this.#redacted(error).message;
    // A plaintext server never answers the TLS handshake: say so rather than just "timeout".
    if (this.#tls && !this.#connectedOnce && /timeout/i.test(this.#down)) {
      this.#down += ` (no TLS handshake with ${this.#where}: does the server speak TLS there?)`;
    }
    if (reported) return;
    this.#log?.warning("redis dedupe store unreachable; reconnecting", {
      redis: this.#where,
      error: this.#down,
    });
  }

  #ready(): void {
    this.#nextReady.resolve();
    this.#nextReady = Promise.withResolvers<void>();
    this.#down = null;
    this.#log?.info(
      this.#connectedOnce ? "redis dedupe store reconnected" : "redis dedupe store connected",
      { redis: this.#where },
    );
    this.#connectedOnce = true;
  }

  /** The error as an `Error` whose message names neither the password nor the URL's credentials. */
  #redacted(error: unknown): Error {
    const message = errorText(error);
    const clean = redact(message, this.#secrets);
    if (clean === message && error instanceof Error) return error;
    return new Error(clean);
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
