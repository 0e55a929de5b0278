/**
 * The redis dedupe store's line to redis, one server or a cluster: commands
 * that fail fast during an outage, a timeout per command, outages reported
 * once, and errors that never name the password.
 *
 * @module
 */

import type { Logger } from "../worker/worker.ts";
import { Deadlines } from "./deadlines.ts";
import { errorText } from "../error_text.ts";
import { redact } from "../redact.ts";
import { TIMED_OUT, withTimeout } from "../with_timeout.ts";
import type { RedisAdapter, RedisAdapterEvents, RedisTlsOptions } from "./redis_adapter.ts";
import { RedisClient } from "./redis_client.ts";
import { RedisClusterClient } from "./redis_cluster_client.ts";
import type { RedisTarget } from "./redis_target.ts";

/** Options of {@linkcode RedisConnection}. */
export interface RedisConnectionOptions {
  /** TLS settings of a `rediss://` or `rediss-cluster://` target (default: the system's CAs). */
  readonly tls?: RedisTlsOptions | undefined;
  /** Where connection losses and recoveries are reported (the password never is). */
  readonly log?: Logger | undefined;
  /** A command that redis has not answered by then fails. */
  readonly commandTimeoutMs: number;
  /** Connection attempts give up after this long, then retry. */
  readonly connectTimeoutMs: number;
  /** The most time between reconnection attempts. */
  readonly maxReconnectDelayMs: number;
}

/**
 * A connection to the redis of a {@linkcode RedisTarget}, made in the
 * background and made again whenever it is lost. While it is down, after an
 * error, commands fail at once instead of queueing; while it is first
 * connecting, they wait for it; and a command redis does not answer within
 * `commandTimeoutMs` fails, so no caller waits on an outage longer than
 * that.
 *
 * @example
 * ```ts
 * import { RedisConnection } from "./redis_connection.ts";
 * import { redisTarget } from "./redis_target.ts";
 *
 * const redis = new RedisConnection(redisTarget("redis://127.0.0.1:6379/0", false), {
 *   commandTimeoutMs: 1_000,
 *   connectTimeoutMs: 2_000,
 *   maxReconnectDelayMs: 2_000,
 * });
 * await redis.send("greeting", ["SET", "greeting", "hello"]);
 * await redis.close();
 * ```
 */
export class RedisConnection {
  readonly #client: RedisAdapter;
  readonly #target: RedisTarget;
  readonly #commandTimeoutMs: number;
  readonly #deadlines: Deadlines;
  readonly #log: Logger | undefined;
  /** Resolves at the next connection: calls made while connecting wait for it (within their timeout). */
  #nextReady = Promise.withResolvers<void>();
  /**
   * Why the connection is down, once the client reported an error and until
   * it is ready again; calls meanwhile fail at once with it.
   */
  #down: string | null = null;
  #connectedOnce = false;
  /** When the client's pending wait before its next connection attempt ends (performance.now()). */
  #reconnectAt = 0;
  #closed: Promise<void> | null = null;

  /** Starts connecting in the background. */
  constructor(target: RedisTarget, options: RedisConnectionOptions) {
    const { commandTimeoutMs } = options;
    this.#target = target;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#deadlines = new Deadlines(
      commandTimeoutMs,
      () => new Error(`redis ${target.where} did not answer within ${commandTimeoutMs}ms`),
    );
    this.#log = options.log;
    const events: RedisAdapterEvents = {
      lost: (error) => this.#lost(error),
      ready: () => this.#ready(),
      retryIn: (delayMs) => {
        this.#reconnectAt = performance.now() + delayMs;
      },
    };
    const adapterOptions = {
      tls: target.tls ? options.tls ?? {} : null,
      connectTimeoutMs: options.connectTimeoutMs,
      maxReconnectDelayMs: options.maxReconnectDelayMs,
    };
    this.#client = target.cluster === null
      ? new RedisClient(target.url, adapterOptions, events)
      : new RedisClusterClient(target.cluster, adapterOptions, events);
  }

  /** Where it points: `host:port/db` or `cluster host:port,…`, without credentials. */
  get where(): string {
    return this.#target.where;
  }

  /** Whether the client is connected and can answer now. */
  get connected(): boolean {
    return this.#client.isReady;
  }

  /** Sends one command; it fails after the command timeout. Errors may name secrets: redact them. */
  send(firstKey: string, args: string[]): Promise<unknown> {
    if (this.#closed !== null) {
      return Promise.reject(new Error(`the redis dedupe store (${this.where}) is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    if (this.#client.isReady) {
      this.#client.send(firstKey, args).then(resolve, reject);
    } else if (this.#down !== null) {
      reject(new Error(`redis ${this.where} is unreachable: ${this.#down}`));
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

  /** The error as an `Error` whose message names neither the password nor the URL's credentials. */
  redacted(error: unknown): Error {
    const message = errorText(error);
    const clean = redact(message, this.#target.secrets);
    if (clean === message && error instanceof Error) return error;
    return new Error(clean);
  }

  /**
   * Waits for the replies still due (up to the command timeout), then
   * disconnects; safe to call twice.
   */
  close(): Promise<void> {
    return this.#closed ??= this.#close();
  }

  async #close(): Promise<void> {
    const client = this.#client;
    client.stopRetrying();
    if (!client.isOpen) return;
    try {
      // close() lets the replies in flight arrive; destroy() when redis does not answer them.
      if (await withTimeout(client.close(), this.#commandTimeoutMs) === TIMED_OUT) client.destroy();
    } catch {
      if (client.isOpen) client.destroy();
    } finally {
      this.#deadlines.clear(new Error(`the redis dedupe store (${this.where}) is closed`));
    }
    // The client cannot cancel the wait before its next attempt; it gives up when that ends.
    const waitMs = this.#reconnectAt - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs) + 1));
  }

  /** The client lost its connection, or failed to make one: reported once per outage. */
  #lost(error: unknown): void {
    if (this.#closed !== null) return;
    const reported = this.#down !== null;
    this.#down = this.redacted(error).message;
    // A plaintext server never answers the TLS handshake: say so rather than just "timeout".
    if (this.#target.tls && !this.#connectedOnce && /timeout/i.test(this.#down)) {
      this.#down += ` (no TLS handshake with ${this.where}: does the server speak TLS there?)`;
    }
    if (reported) return;
    this.#log?.warning("redis dedupe store unreachable; reconnecting", {
      redis: this.where,
      error: this.#down,
    });
  }

  #ready(): void {
    this.#nextReady.resolve();
    this.#nextReady = Promise.withResolvers<void>();
    this.#down = null;
    this.#log?.info(
      this.#connectedOnce ? "redis dedupe store reconnected" : "redis dedupe store connected",
      { redis: this.where },
    );
    this.#connectedOnce = true;
  }
}
