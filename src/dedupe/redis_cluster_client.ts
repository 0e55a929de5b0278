/**
 * The {@linkcode RedisAdapter} of a Redis Cluster (`redis-cluster://`,
 * `rediss-cluster://`), on `createCluster` of `@redis/client`.
 *
 * @module
 */

import { createCluster } from "@redis/client";
import { nodeUrl, type RedisClusterUrl } from "../config/redis_cluster_url.ts";
import {
  reconnectDelay,
  type RedisAdapter,
  type RedisAdapterEvents,
  type RedisAdapterOptions,
  redisClientOptions,
} from "./redis_adapter.ts";

/**
 * A client of a Redis Cluster: it learns the slots from the seed nodes,
 * sends each command to the master of its key's slot (pipelined per
 * connection) and follows MOVED and ASK redirections while slots migrate.
 * The cluster client gives up when no seed node answers, so this tries
 * again until it is closed.
 *
 * @example
 * ```ts
 * import { parseRedisClusterUrl, type RedisClusterUrl } from "../config/redis_cluster_url.ts";
 * import { RedisClusterClient } from "./redis_cluster_client.ts";
 *
 * const cluster = parseRedisClusterUrl("redis-cluster://127.0.0.1:7000") as RedisClusterUrl;
 * const client = new RedisClusterClient(
 *   cluster,
 *   { tls: null, connectTimeoutMs: 2_000, maxReconnectDelayMs: 2_000 },
 *   { lost: (error) => console.warn(error), ready: () => {}, retryIn: () => {} },
 * );
 * client.stopRetrying();
 * await client.close();
 * ```
 */
export class RedisClusterClient implements RedisAdapter {
  readonly #client;
  readonly #events: RedisAdapterEvents;
  readonly #maxReconnectDelayMs: number;
  /** The connection attempt waiting to be retried. */
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** Starts learning the cluster's slots from its seed nodes in the background. */
  constructor(cluster: RedisClusterUrl, options: RedisAdapterOptions, events: RedisAdapterEvents) {
    const client = createCluster({
      rootNodes: cluster.nodes.map((node) => ({ url: nodeUrl(cluster, node) })),
      // Every connection, to the seed nodes and to those discovered, is made from these.
      defaults: {
        ...redisClientOptions(options, events),
        ...(cluster.username === "" ? {} : { username: cluster.username }),
        ...(cluster.password === "" ? {} : { password: cluster.password }),
      },
    });
    client.on("error", (error: unknown) => events.lost(error));
    client.on("node-error", (error: unknown) => events.lost(error));
    client.on("node-ready", () => {
      if (client.isReady) events.ready();
    });
    this.#client = client;
    this.#events = events;
    this.#maxReconnectDelayMs = options.maxReconnectDelayMs;
    this.#connect(0);
  }

  get isReady(): boolean {
    return this.#client.isReady;
  }

  get isOpen(): boolean {
    return this.#client.isOpen;
  }

  send(firstKey: string, args: string[]): Promise<unknown> {
    return this.#client.sendCommand(firstKey, false, args);
  }

  close(): Promise<unknown> {
    return this.#client.close();
  }

  destroy(): void {
    this.#client.destroy();
  }

  /** Cancels the next attempt to learn the slots, and every one after it. */
  stopRetrying(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
  }

  /** Learns the cluster's slots from the seed nodes; tries again until stopped. */
  #connect(retries: number): void {
    this.#client.connect().then(
      () => this.#events.ready(),
      (error) => {
        if (this.#stopped) return;
        this.#events.lost(error);
        const delayMs = reconnectDelay(retries, this.#maxReconnectDelayMs);
        this.#events.retryIn(delayMs);
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          if (!this.#stopped) this.#connect(retries + 1);
        }, delayMs);
      },
    );
  }
}
