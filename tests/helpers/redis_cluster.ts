/**
 * Test harness for a real Redis Cluster: `masters` redis-servers with
 * `--cluster-enabled yes` on free loopback ports, joined by
 * `redis-cli --cluster create`, and slot migration through
 * `redis-cli --cluster reshard`.
 *
 * @module
 */

import { type RedisServer, startRedis } from "./redis.ts";
import { waitFor } from "./nsq.ts";

/** A running cluster of masters without replicas. */
export interface RedisCluster extends AsyncDisposable {
  readonly nodes: readonly RedisServer[];
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,…`. */
  readonly url: string;
  /** The node id of `nodes[i]`. */
  nodeId(i: number): Promise<string>;
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

/** Starts the servers, creates the cluster and resolves once every node reports it ok. */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const close = async () => {
    await Promise.all(nodes.map((node) => node.close()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis({
          args: ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"],
        }),
      );
    }
    const address = (node: RedisServer) => `127.0.0.1:${node.port}`;
    await redisCli("--cluster", "create", ...nodes.map(address), "--cluster-yes");
    await waitFor(async () => {
      for (const node of nodes) {
        if (!(await node.command("CLUSTER", "INFO")).includes("cluster_state:ok")) return false;
      }
      return true;
    }, { message: "cluster_state:ok on every node" });
    const nodeId = async (i: number) =>
      (await nodes[i]!.command("CLUSTER", "MYID")).split("\r\n")[1]!;
    return {
      nodes,
      url: `redis-cluster://${nodes.map(address).join(",")}`,
      nodeId,
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
