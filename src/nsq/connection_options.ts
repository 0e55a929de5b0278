/**
 * How to reach and negotiate with one nsqd: what the reader and writer
 * connections take, built from the `nsq:` section by `src/entry/nsq_connection_options.ts`.
 *
 * @module
 */

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
