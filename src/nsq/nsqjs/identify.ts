/**
 * What a connection tells nsqd about itself in IDENTIFY.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any

/**
 * nsqjs's connection identifying as `userAgent`, with the host name from
 * {@link hostName}, and leaving the message timeout and the output buffer
 * timeout to nsqd when they are not set.
 */
export function withIdentify(base: any, userAgent: string): any {
  return class extends base {
    identify(): Record<string, unknown> {
      const config = this.config;
      const longName = hostName();
      const shortName = longName.split(".")[0];
      const body: Record<string, unknown> = {
        client_id: config.clientId || shortName,
        hostname: longName,
        feature_negotiation: true,
        heartbeat_interval: config.heartbeatInterval * 1000,
        deflate: config.deflate,
        deflate_level: config.deflateLevel,
        snappy: config.snappy,
        tls_v1: config.tls,
        user_agent: userAgent,
      };
      // Unset, nsqd's own defaults apply.
      if (config.messageTimeout !== null) body.msg_timeout = config.messageTimeout;
      if (config.outputBufferTimeout !== null) {
        body.output_buffer_timeout = config.outputBufferTimeout;
      }
      return body;
    }
  };
}

/**
 * The host name nsqd shows for our connections. nsqjs reads `os.hostname()`,
 * which needs `--allow-sys=hostname`; without it IDENTIFY throws inside the
 * socket's connect callback and the connection hangs without a word. The
 * name is only informational, so it is read only when permitted.
 */
function hostName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? Deno.hostname() : "nsqworker";
}
