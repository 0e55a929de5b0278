/**
 * How to reach and negotiate with one nsqd: what the reader and writer
 * connections take, built from the `nsq:` section by {@linkcode connectionOptions}.
 *
 * @module
 */

import type { NsqConfig } from "../config/types.ts";

/** TLS material, already read from disk. */
export interface TlsOptions {
  readonly ca: Uint8Array | null;
  readonly cert: Uint8Array | null;
  readonly key: Uint8Array | null;
  readonly insecureSkipVerify: boolean;
}

/** How to reach and negotiate with one nsqd. */
export interface ConnectionOptions {
  readonly authSecret: string | null;
  readonly tls: TlsOptions | null;
  readonly compression: "none" | "deflate" | "snappy";
  /** Asked of nsqd in IDENTIFY; nsqd sends a heartbeat this often when idle. */
  readonly heartbeatIntervalMs: number;
  /** A connection that hears nothing (not even a heartbeat) this long is dead. */
  readonly idleTimeoutMs: number;
  readonly clientId?: string;
  /** How long nsqd may buffer what it sends us; null leaves nsqd's default. */
  readonly outputBufferTimeoutMs?: number | null;
  readonly userAgent?: string;
}

/** nsqd sends a heartbeat this often when there is no other traffic. */
export const HEARTBEAT_INTERVAL_MS = 15_000;

/**
 * No byte for two heartbeats and a margin means the peer is gone (a dead
 * host, a dropped network) even though TCP has not noticed.
 */
export const IDLE_TIMEOUT_MS = 2 * HEARTBEAT_INTERVAL_MS + 5_000;

/**
 * The connection options for `nsq`; `readFile` reads the TLS files it names.
 * Whether those files can be read and the codec loaded is checked before,
 * with the config (`prepare.ts`), where a problem has its line.
 */
export function connectionOptions(
  nsq: NsqConfig,
  readFile: (path: string) => Uint8Array,
  clientId?: string,
): ConnectionOptions {
  const tls = nsq.tls;
  const read = (path: string | null) => path === null ? null : readFile(path);
  return {
    authSecret: nsq.authSecret,
    compression: nsq.compression,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    tls: tls === null ? null : {
      ca: read(tls.caFile),
      cert: read(tls.certFile),
      key: read(tls.keyFile),
      insecureSkipVerify: tls.insecureSkipVerify,
    },
    outputBufferTimeoutMs: nsq.outputBufferTimeoutMs,
    ...(clientId === undefined ? {} : { clientId }),
  };
}
