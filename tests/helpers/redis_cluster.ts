/**
 * Test harness for a real Redis Cluster: `masters` redis-servers with
 * `--cluster-enabled yes` on free loopback ports, joined by
 * `redis-cli --cluster create` (optionally with a replica per master, for
 * failover), and slot migration through `redis-cli --cluster reshard`.
 *
 * @module
 */

import { type RedisServer, startRedis } from "./redis_server.ts";
import { waitFor } from "./wait_for.ts";

/** A running cluster: its masters, and their replicas when asked for. */
export interface RedisCluster extends AsyncDisposable {
  /** Every server, masters and replicas (which is which: {@linkcode RedisCluster.roles}). */
  readonly nodes: readonly RedisServer[];
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,…`. */
  readonly url: string;
  /** The node id of `nodes[i]`. */
  nodeId(i: number): Promise<string>;
  /**
   * What each node is now, as `nodes[i]` sees itself: `master`, the index
   * of the master it replicates, or `down` when it is not running.
   */
  roles(): Promise<("master" | "down" | number)[]>;
  /** Moves `slots` slots, with their keys, from `nodes[from]` to `nodes[to]`. */
  reshard(from: number, to: number, slots: number): Promise<void>;
  close(): Promise<void>;
}

async function redisCli(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("redis-cli", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`redis-cli ${args.join(" ")} exited ${code}:\n${text}`);
  return text;
}

/** Options of {@linkcode startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Replicas per master (`--cluster-replicas`), default 0. */
  readonly replicas?: number;
}

/**
 * Starts the servers, creates the cluster and resolves once every node
 * reports it ok and every replica is in sync with its master. A failed
 * master is replaced by its replica within seconds (`cluster-node-timeout`
 * 1000 ms).
 */
export async function startRedisCluster(
  masters = 3,
  options: StartRedisClusterOptions = {},
): Promise<RedisCluster> {
  const replicas = options.replicas ?? 0;
  const nodes: RedisServer[] = [];
  const close = async () => {
    await Promise.all(nodes.map((node) => node.close()));
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      nodes.push(
        await startRedis({
          args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"],
        }),
      );
    }
    const address = (node: RedisServer) => `127.0.0.1:${node.port}`;
    await redisCli(
      "--cluster",
      "create",
      ...nodes.map(address),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    );
    await waitFor(async () => {
      for (const node of nodes) {
        if (!(await node.command("CLUSTER", "INFO")).includes("cluster_state:ok")) return false;
      }
      return true;
    }, { message: "cluster_state:ok on every node" });
    const nodeId = async (i: number) =>
      (await nodes[i]!.command("CLUSTER", "MYID")).split("\r\n")[1]!;
    const ids = await Promise.all(nodes.map((_, i) => nodeId(i)));
    const roles = async () => {
      const roles: ("master" | "down" | number)[] = [];
      for (const node of nodes) {
        if (!node.running) {
          roles.push("down");
          continue;
        }
        // "<id> <ip:port@cport> <flags> <master id or -> …", one line per node.
        const me = (await node.command("CLUSTER", "NODES")).split("\n")
          .find((line) => line.split(" ")[2]?.includes("myself"))!.split(" ");
        roles.push(me[3] === "-" ? "master" : ids.indexOf(me[3]!));
      }
      return roles;
    };
    await waitFor(async () => {
      for (const node of nodes) {
        const info = await node.command("INFO", "replication");
        if (info.includes("role:slave") && !info.includes("master_link_status:up")) return false;
      }
      return true;
    }, { message: "every replica in sync" });
    return {
      nodes,
      url: `redis-cluster://${nodes.map(address).join(",")}`,
      nodeId,
      roles,
      async reshard(from, to, slots) {
        const [fromId, toId] = [await nodeId(from), await nodeId(to)];
        await redisCli(
          "--cluster",
          "reshard",
          address(nodes[0]!),
          "--cluster-from",
          fromId,
          "--cluster-to",
          toId,
          "--cluster-slots",
          String(slots),
          "--cluster-yes",
          "--cluster-pipeline",
          "100",
        );
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
