/**
 * The redis a dedupe store URL names, checked before anything connects.
 *
 * @module
 */

import { redact } from "../redact.ts";
import {
  isRedisClusterUrl,
  parseRedisClusterUrl,
  type RedisClusterUrl,
} from "../config/redis_cluster_url.ts";

/** A checked `redis://`, `rediss://`, `redis-cluster://` or `rediss-cluster://` URL. */
export interface RedisTarget {
  /** The URL as given. */
  readonly url: string;
  /** The cluster's seed nodes and credentials, or null for one server. */
  readonly cluster: RedisClusterUrl | null;
  /** Whether the URL asks for TLS (`rediss://`, `rediss-cluster://`). */
  readonly tls: boolean;
  /** Where it points, for messages: `host:port/db` or `cluster host:port,…`, without credentials. */
  readonly where: string;
  /** The password as written in the URL and decoded: neither may appear in a message. */
  readonly secrets: readonly string[];
}

/**
 * Checks `url`; `withTls` tells whether TLS settings come with it. Throws a
 * `RangeError` (never naming the password) on a malformed URL, or on TLS
 * settings with a plaintext one.
 *
 * @example
 * ```ts
 * import { redisTarget } from "./redis_target.ts";
 *
 * redisTarget("redis://:s3cret@127.0.0.1:6379/2", false).where; // "127.0.0.1:6379/2"
 * ```
 */
export function redisTarget(url: string, withTls: boolean): RedisTarget {
  const cluster = isRedisClusterUrl(url) ? parseRedisClusterUrl(url) : null;
  if (typeof cluster === "string") {
    throw new RangeError(
      `Cannot create the redis dedupe store as 'url' must be a redis-cluster:// URL ${cluster}: current value is ${
        redact(url)
      }`,
    );
  }
  let parsed: URL | null = null;
  if (cluster === null) {
    try {
      parsed = new URL(url);
    } catch {
      throw new RangeError(
        `Cannot create the redis dedupe store as 'url' must be a redis:// URL: current value is ${
          redact(url)
        }`,
      );
    }
  }
  const tls = cluster?.tls ?? parsed?.protocol === "rediss:";
  if (withTls && !tls) {
    throw new RangeError(
      `Cannot create the redis dedupe store as TLS settings need a rediss:// or rediss-cluster:// URL: current value is ${
        redact(url)
      }`,
    );
  }
  const password = cluster?.password ?? parsed!.password;
  return {
    url,
    cluster,
    tls,
    where: cluster !== null
      ? `cluster ${cluster.nodes.map((node) => `${node.host}:${node.port}`).join(",")}`
      : `${parsed!.host}${parsed!.pathname === "/" ? "" : parsed!.pathname}`,
    secrets: [...new Set([password, safeDecode(password)])].filter((secret) => secret !== ""),
  };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
