/**
 * The dedupe store shared across hosts (`dedupe.store: redis://…`), on the
 * official Redis client `@redis/client` (node-redis without its module
 * packages).
 *
 * @module
 */

import type { Logger } from "../worker/worker.ts";
import { ClaimTokens } from "./claim_token.ts";
import type { Claim, DedupeStore } from "./store.ts";
import { groupBySlot } from "./group_by_slot.ts";
import type { RedisTlsOptions } from "./redis_adapter.ts";
import { RedisConnection } from "./redis_connection.ts";
import {
  BATCH_SCRIPT,
  CLAIM_SCRIPT,
  evalScript,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
  type Script,
} from "./redis_scripts.ts";
import { redisTarget } from "./redis_target.ts";
import type { SharedRedis } from "./shared_redis.ts";

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
  readonly #redis: RedisConnection;
  /** Whether the URL names a cluster: batches are then split by slot. */
  readonly #cluster: boolean;
  readonly #ttl: string;
  readonly #prefix: string;
  readonly #tokens = new ClaimTokens();
  /** False once redis refused `SET … NX … GET` (before 7.0): claims use the Lua script then. */
  #setGet = true;
  #closed: Promise<void> | null = null;
  /** The claims and done marks of this turn, sent when it ends. */
  #queued: Queued[] = [];
  #shared: SharedRedis | null = null;

  /** Starts connecting in the background; throws a `RangeError` on bad options or URL. */
  constructor(options: RedisStoreOptions) {
    const {
      url,
      ttlMs,
      commandTimeoutMs = 1_000,
      connectTimeoutMs = 2_000,
      maxReconnectDelayMs = 2_000,
    } = options;
    const target = redisTarget(url, options.tls !== undefined);
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
    this.#cluster = target.cluster !== null;
    this.#redis = new RedisConnection(target, {
      tls: options.tls,
      log: options.log,
      commandTimeoutMs,
      connectTimeoutMs,
      maxReconnectDelayMs,
    });
  }

  /** Where the store points: `host:port/db`, without credentials. */
  get where(): string {
    return this.#redis.where;
  }

  /** Whether the client is connected and can answer now. */
  get connected(): boolean {
    return this.#redis.connected;
  }

  /** The store's connection, for the order leases and shared rate limits. */
  get redis(): SharedRedis {
    const redis = this.#redis;
    return this.#shared ??= {
      where: redis.where,
      send: (firstKey, args) =>
        redis.send(firstKey, args).catch((error) => {
          throw redis.redacted(error);
        }),
    };
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
      return Promise.reject(new Error(`the redis dedupe store (${this.where}) is closed`));
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
    for (const group of groupBySlot(queued)) this.#sendGroup(group);
  };

  #sendGroup(queued: Queued[]): void {
    const sent = queued.length === 1 ? this.#single(queued[0]!) : this.#batch(queued);
    sent.then(
      (replies) => queued.forEach((call, i) => call.resolve(replies[i]!)),
      (error) => {
        const redacted = this.#redis.redacted(error);
        for (const call of queued) call.reject(redacted);
      },
    );
  }

  async #batch(queued: readonly Queued[]): Promise<number[]> {
    const args = [DONE_MARK, this.#ttl];
    for (const call of queued) args.push(call.token, call.lease);
    const replies = await this.#eval(BATCH_SCRIPT, queued.map((call) => call.key), args);
    if (!Array.isArray(replies) || replies.length !== queued.length) {
      throw new Error(
        `redis ${this.where} answered a batch of ${queued.length} with ${JSON.stringify(replies)}`,
      );
    }
    return replies as number[];
  }

  /** A lone claim or done mark, as a plain command: cheaper for redis than a script. */
  async #single(call: Queued): Promise<number[]> {
    if (call.token === "") {
      await this.#redis.send(call.key, ["SET", call.key, DONE_MARK, "PX", this.#ttl]);
      return [0];
    }
    return [await this.#claimOne(call.key, call.token, call.lease)];
  }

  /** 1 claimed, 2 done, 0 busy. */
  async #claimOne(id: string, token: string, lease: string): Promise<number> {
    if (this.#setGet) {
      try {
        // Sets the key only if it is free, and answers what it held: nil, the done mark or a token.
        const held = await this.#redis.send(id, ["SET", id, token, "NX", "PX", lease, "GET"]);
        if (held === null) return 1;
        return held === DONE_MARK ? 2 : 0;
      } catch (error) {
        if (!(error instanceof Error) || !/syntax error/i.test(error.message)) throw error;
        this.#setGet = false;
      }
    }
    return await this.#eval(CLAIM_SCRIPT, [id], [token, lease, DONE_MARK]) as number;
  }

  /** Deletes the claim on `key` if `token` still owns it. */
  async release(scope: string, key: string, token: string): Promise<void> {
    try {
      await this.#eval(RELEASE_SCRIPT, [this.#key(scope, key)], [token]);
    } catch (error) {
      throw this.#redis.redacted(error);
    }
  }

  /** Extends the claim on `key` to `leaseMs` from now if `token` still owns it. */
  async renew(scope: string, key: string, token: string, leaseMs: number): Promise<void> {
    try {
      await this.#eval(RENEW_SCRIPT, [this.#key(scope, key)], [token, leaseArg(leaseMs)]);
    } catch (error) {
      throw this.#redis.redacted(error);
    }
  }

  /**
   * Waits for the replies still due (up to the command timeout), then
   * disconnects; safe to call twice.
   */
  close(): Promise<void> {
    // What this turn queued goes out first; close() waits for the answers.
    if (this.#closed === null) this.#flush();
    return this.#closed ??= this.#redis.close();
  }

  #key(scope: string, key: string): string {
    return this.#prefix + scope + ":" + key;
  }

  #eval(script: Script, keys: string[], args: string[]): Promise<unknown> {
    return evalScript(
      (firstKey, command) => this.#redis.send(firstKey, command),
      script,
      keys,
      args,
    );
  }
}
