/**
 * nsqd connection settings from the `nsq:` section.
 *
 * @module
 */

import type { NsqConfig } from "../config/types.ts";
import type { ConnectionOptions } from "../nsq/connection_options.ts";

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
