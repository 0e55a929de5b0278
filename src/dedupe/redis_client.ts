/**
 * The {@linkcode RedisAdapter} of one redis server (`redis://`, `rediss://`),
 * on `createClient` of `@redis/client`.
 *
 * @module
 */

import { createClient } from "@redis/client";
import {
  type RedisAdapter,
  type RedisAdapterEvents,
  type RedisAdapterOptions,
  redisClientOptions,
} from "./redis_adapter.ts";

/**
 * A client of one redis server that connects in the background and
 * reconnects by itself after every loss, whatever the wait.
 *
 * @example
 * ```ts
 * import { RedisClient } from "./redis_client.ts";
 *
 * const client = new RedisClient(
 *   "redis://127.0.0.1:6379/0",
 *   { tls: null, connectTimeoutMs: 2_000, maxReconnectDelayMs: 2_000 },
 *   { lost: (error) => console.warn(error), ready: () => {}, retryIn: () => {} },
 * );
 * await client.close();
 * ```
 */
export class RedisClient implements RedisAdapter {
  readonly #client;

  /** Starts connecting to `url` in the background. */
  constructor(url: string, options: RedisAdapterOptions, events: RedisAdapterEvents) {
    const client = createClient({ url, ...redisClientOptions(options, events) });
    client.on("error", (error: unknown) => events.lost(error));
    client.on("ready", () => events.ready());
    this.#client = client;
    // connect() resolves once ready, retrying meanwhile; it only rejects when closed first.
    client.connect().catch(() => {});
  }

  get isReady(): boolean {
    return this.#client.isReady;
  }

  get isOpen(): boolean {
    return this.#client.isOpen;
  }

  send(_firstKey: string, args: string[]): Promise<unknown> {
    return this.#client.sendCommand(args);
  }

  close(): Promise<unknown> {
    return this.#client.close();
  }

  destroy(): void {
    this.#client.destroy();
  }

  /** Nothing to stop: the client's own reconnections end with `close` or `destroy`. */
  stopRetrying(): void {}
}
