/**
 * Our connection options as nsqjs takes them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "../connection_options.ts";

/** `options` in nsqjs's terms (whole seconds, flags, Buffers). */
export function nsqjsOptions(options: ConnectionOptions): Record<string, unknown> {
  const tls = options.tls;
  const asBuffer = (bytes: Uint8Array | null) => bytes === null ? null : Buffer.from(bytes);
  return {
    authSecret: options.authSecret,
    clientId: options.clientId ?? null,
    outputBufferTimeout: options.outputBufferTimeoutMs ?? null,
    deflate: options.compression === "deflate",
    snappy: options.compression === "snappy",
    heartbeatInterval: Math.max(1, Math.round(options.heartbeatIntervalMs / 1000)),
    idleTimeout: Math.max(1, Math.round(options.idleTimeoutMs / 1000)),
    tls: tls !== null,
    tlsVerification: tls === null || !tls.insecureSkipVerify,
    ca: asBuffer(tls?.ca ?? null),
    cert: asBuffer(tls?.cert ?? null),
    key: asBuffer(tls?.key ?? null),
  };
}
