/**
 * `redis-cluster://[user:pass@]HOST:PORT[,HOST:PORT…]` (and
 * `rediss-cluster://` for TLS): the seed nodes of a Redis Cluster, from
 * which the client learns the rest.
 *
 * @module
 */

import { formatHostPort, parseHostPort } from "../config/address.ts";
import type { HostPort } from "../config/types.ts";

/** A parsed cluster URL. */
export interface RedisClusterUrl {
  readonly tls: boolean;
  /** Empty when the URL names none. */
  readonly username: string;
  readonly password: string;
  readonly nodes: readonly HostPort[];
}

const CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^/?#]*)@)?([^/?#@]*)\/?$/;

/** Whether `text` starts like a cluster URL (it may still be malformed). */
export function isRedisClusterUrl(text: string): boolean {
  return /^rediss?-cluster:\/\//.test(text);
}

/**
 * Parses a cluster URL; returns why not as a string (never naming the
 * password) when it is malformed.
 *
 * @example
 * ```ts
 * import { parseRedisClusterUrl } from "./redis_cluster_url.ts";
 *
 * parseRedisClusterUrl("redis-cluster://10.0.0.1:7000,10.0.0.2:7000");
 * // { tls: false, username: "", password: "", nodes: [{ host: "10.0.0.1", port: 7000 }, …] }
 * ```
 */
export function parseRedisClusterUrl(text: string): RedisClusterUrl | string {
  const match = CLUSTER_URL.exec(text);
  if (match === null) {
    return "(HOST:PORT pairs separated by commas; no database, query or fragment)";
  }
  const [, scheme, userinfo = "", hosts = ""] = match;
  const nodes: HostPort[] = [];
  for (const item of hosts.split(",")) {
    const node = parseHostPort(item);
    if (node === null) {
      return `(${JSON.stringify(item)} is not a HOST:PORT with a port of 1 to 65535)`;
    }
    nodes.push(node);
  }
  const colon = userinfo.indexOf(":");
  const [user, pass] = colon === -1
    ? [userinfo, ""]
    : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(user);
    password = decodeURIComponent(pass);
  } catch {
    return "(the user or password has a malformed %-escape)";
  }
  return { tls: scheme === "rediss", username, password, nodes };
}

/** The URL of one node, with the credentials, for the client's `url` option. */
export function nodeUrl(cluster: RedisClusterUrl, node: HostPort): string {
  const auth = cluster.username === "" && cluster.password === ""
    ? ""
    : `${encodeURIComponent(cluster.username)}:${encodeURIComponent(cluster.password)}@`;
  return `${cluster.tls ? "rediss" : "redis"}://${auth}${formatHostPort(node)}`;
}
