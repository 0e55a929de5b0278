/**
 * Daemon processes running the `timed_ledger` fixture worker on one entry,
 * and the marks it leaves: when each handler started and ended, in which
 * process, on one clock for every process.
 *
 * @module
 */

import { type CliProcess, startDaemon, type TempDir } from "./daemon_process.ts";
import type { NsqCluster } from "./nsq/nsq_cluster.ts";

/** The channel of the entry. */
export const LEDGER_CHANNEL = "work";

/** One line of the ledger: a handler's start or end, in ms since the epoch. */
export interface Mark {
  readonly what: "start" | "end";
  readonly pid: number;
  readonly key: string;
  readonly seq: string;
  readonly at: number;
}

/** Every mark written to `dir`'s ledger so far. */
export async function readMarks(dir: TempDir): Promise<Mark[]> {
  return (await dir.readLines("ledger")).map((line) => {
    const [what, pid, key, seq, at] = line.split(" ");
    return { what: what as Mark["what"], pid: Number(pid), key: key!, seq: seq!, at: Number(at) };
  });
}

/**
 * The config of a daemon consuming `topic` from the first nsqd with the
 * timed ledger writing to `dir` (each handler `sleepMs` long), with
 * `dedupe` and more `entry` keys.
 */
export function ledgerConfig(
  nsq: NsqCluster,
  topic: string,
  dir: TempDir,
  dedupe: Record<string, unknown>,
  entry: Record<string, unknown>,
  sleepMs = 0,
): Record<string, unknown> {
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  return {
    nsq: { nsqd_tcp_addresses: [nsqd], publish_nsqd_tcp_address: nsqd },
    dedupe,
    http: { listen: null },
    shutdown_timeout: "1s",
    workers: [{
      topic,
      channel: LEDGER_CHANNEL,
      worker: "timed_ledger",
      options: { out: dir.join("ledger"), sleep_ms: sleepMs },
      ...entry,
    }],
  };
}

/** Starts a daemon process on `config` and resolves once it is connected to nsqd. */
export async function startConnected(
  dir: TempDir,
  config: Record<string, unknown>,
): Promise<CliProcess> {
  const daemon = await startDaemon(dir, config);
  await daemon.waitForLine((line) => line.includes('"connected to nsqd"'));
  return daemon;
}
