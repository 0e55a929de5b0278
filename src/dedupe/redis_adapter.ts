/**
 * What the redis dedupe store needs of a client, one server or a cluster,
 * and the settings both clients of `@redis/client` are made with: no
 * offline queue, a bounded command queue, reconnection that never gives up,
 * and TLS when the URL asks for it.
 *
 * @module
 */

import { retryDelay } from "../backoff.ts";
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

/** What the store sends commands through: one server, or a cluster that routes by key. */
export interface RedisAdapter {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  /** Sends `args`; a cluster routes it to the master of `firstKey`'s slot. */
  send(firstKey: string, args: string[]): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
  /**
   * Stops the attempts to connect that the adapter schedules itself (the
   * client's own reconnections end with `close` or `destroy`).
   */
  stopRetrying(): void;
}

/** How an adapter tells its owner about its connection; called only after its constructor. */
export interface RedisAdapterEvents {
  /** The connection was lost, or could not be made. */
  lost(error: unknown): void;
  /** The connection is ready for commands. */
  ready(): void;
  /** The next attempt to connect starts in `delayMs`. */
  retryIn(delayMs: number): void;
}

/** The connection settings of an adapter. */
export interface RedisAdapterOptions {
  /** TLS settings, or null for plaintext. */
  readonly tls: RedisTlsOptions | null;
  /** Connection attempts give up after this long, then retry. */
  readonly connectTimeoutMs: number;
  /** The most time between reconnection attempts. */
  readonly maxReconnectDelayMs: number;
}

/** Calls waiting for redis at once, beyond which new ones fail at once (a hung server). */
const MAX_QUEUED_COMMANDS = 10_000;
/** The first wait before connecting again; it doubles up to `maxReconnectDelayMs`. */
const FIRST_RECONNECT_DELAY_MS = 50;

/** The wait before connection attempt `retries + 1`: from 50 ms, doubling up to `maxDelayMs`. */
export function reconnectDelay(retries: number, maxDelayMs: number): number {
  return retryDelay(retries + 1, FIRST_RECONNECT_DELAY_MS, maxDelayMs);
}

/**
 * The options of `createClient`, and of each node of `createCluster`, for
 * `options`; reports through `events`.
 *
 * @example
 * ```ts
 * import { createClient } from "@redis/client";
 * import { redisClientOptions } from "./redis_adapter.ts";
 *
 * const client = createClient({
 *   url: "redis://127.0.0.1:6379",
 *   ...redisClientOptions({ tls: null, connectTimeoutMs: 2_000, maxReconnectDelayMs: 2_000 }, {
 *     lost: (error) => console.warn(error),
 *     ready: () => console.info("ready"),
 *     retryIn: () => {},
 *   }),
 * });
 * ```
 */
export function redisClientOptions(options: RedisAdapterOptions, events: RedisAdapterEvents) {
  const { tls, connectTimeoutMs, maxReconnectDelayMs } = options;
  if (tls !== null) listenToTlsSocketErrors();
  const socket = {
    connectTimeout: connectTimeoutMs,
    // Never give up: the store recovers whenever redis comes back.
    reconnectStrategy: (retries: number) => {
      const delayMs = reconnectDelay(retries, maxReconnectDelayMs);
      events.retryIn(delayMs);
      return delayMs;
    },
    // TLS only, never a plaintext fallback: a server that does not speak it fails the handshake.
    ...(tls !== null
      ? {
        tls: true as const,
        rejectUnauthorized: !(tls.insecureSkipVerify ?? false),
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls.key === undefined ? {} : { key: tls.key }),
        // An error the client was not listening for (a refused handshake) still counts as an outage.
        [TLS_SOCKET_ERRORS]: (error: unknown, heardByClient: boolean) => {
          if (!heardByClient) events.lost(error);
        },
      }
      : {}),
  };
  return {
    disableOfflineQueue: true,
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    socket,
  };
}
