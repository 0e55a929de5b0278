/**
 * Test harness that runs a real nsqlookupd and nsqd on loopback, each with a
 * fresh temporary data directory, and talks to them over nsqd's HTTP API and a
 * minimal NSQ TCP consumer.
 *
 * ```ts
 * Deno.test("worker finishes a message", async () => {
 *   await using nsq = await startNsq();
 *   const topic = uniqueTopic("finish");
 *   await nsq.publish(topic, "hello");
 *   // ... run the code under test against nsq.nsqds[0].tcpAddress ...
 *   await waitFor(async () => (await nsq.channel(topic, "worker"))?.depth === 0);
 * });
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { nsqBin } from "../../../tools/nsq_bin.ts";
import { Cluster, type NsqCluster } from "./nsq_cluster.ts";
import { HOST, NsqServer } from "./nsq_server.ts";

/** Options of {@linkcode startNsq}. */
export interface StartNsqOptions {
  /** How many nsqd processes. Default 1. */
  nsqds?: number;
  /** Whether to run an nsqlookupd that every nsqd registers with. Default true. */
  lookupd?: boolean;
  /** Extra flags for every nsqd, after (so overriding) the harness's own, e.g. `"--msg-timeout=2s"`. */
  nsqdArgs?: readonly string[];
}

/**
 * Starts nsqlookupd (unless `lookupd: false`) and `nsqds` nsqd processes on
 * loopback with free ports and fresh data directories, and resolves once each
 * answers `GET /ping`.
 *
 * @example
 * ```ts
 * await using nsq = await startNsq({ nsqds: 2, nsqdArgs: ["--msg-timeout=2s"] });
 * await nsq.publish(uniqueTopic("demo"), "hello", 1);
 * ```
 *
 * @throws {Error} when a process does not come up; the message ends with its output.
 */
export async function startNsq(options: StartNsqOptions = {}): Promise<NsqCluster> {
  const { nsqds: nsqdCount = 1, lookupd: withLookupd = true, nsqdArgs = [] } = options;
  if (!Number.isInteger(nsqdCount) || nsqdCount < 1) {
    throw new RangeError(
      `Cannot start NSQ as 'nsqds' must be a positive integer: current value is ${nsqdCount}`,
    );
  }
  const [nsqdBin, lookupdBin] = await Promise.all([
    nsqBin("nsqd"),
    withLookupd ? nsqBin("nsqlookupd") : undefined,
  ]);
  const root = await Deno.makeTempDir({ prefix: "nsqworker_nsq_" });

  const lookupd = lookupdBin === undefined
    ? null
    : new NsqServer("nsqlookupd", lookupdBin, "", (tcp, http) => [
      `--tcp-address=${HOST}:${tcp}`,
      `--http-address=${HOST}:${http}`,
      `--broadcast-address=${HOST}`,
    ]);
  // Distinct node IDs keep message IDs unique across the nsqds of a cluster,
  // which dedupe tests rely on.
  const firstNodeId = Math.floor(Math.random() * (1024 - nsqdCount));
  const nsqds: NsqServer[] = [];
  for (let i = 0; i < nsqdCount; i++) {
    const dataDir = join(root, `nsqd${i}`);
    await Deno.mkdir(dataDir);
    nsqds.push(
      new NsqServer(`nsqd ${i}`, nsqdBin, dataDir, (tcp, http) => [
        `--tcp-address=${HOST}:${tcp}`,
        `--http-address=${HOST}:${http}`,
        `--broadcast-address=${HOST}`,
        `--data-path=${dataDir}`,
        `--node-id=${firstNodeId + i}`,
        ...(lookupd ? [`--lookupd-tcp-address=${lookupd.tcpAddress}`] : []),
        ...nsqdArgs,
      ]),
    );
  }

  const cluster = new Cluster(root, lookupd, nsqds);
  try {
    await lookupd?.start();
    // allSettled, not all: close() below must not run while a start is still spawning.
    const results = await Promise.allSettled(nsqds.map((nsqd) => nsqd.start()));
    const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, "Cannot start several nsqds");
  } catch (error) {
    await cluster.close().catch(() => {/* the startup error is the one worth reporting */});
    throw error;
  }
  return cluster;
}
