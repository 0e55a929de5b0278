/**
 * The "cpu-bound" section: a handler that costs 20 µs of CPU a message
 * (bench/workers/spin20us.ts), run by the daemon with the entry's
 * `processes` 0 (its own thread), 1, 2 and 4 (child processes), beside a
 * go-nsq consumer doing the same work on every core
 * (bench/go_cpu_consumer/), in the bench's rotation.
 *
 * A daemon that refuses `processes` in its config (one without the key)
 * makes those rows "not available" with its reason, found before any drain
 * by `nsqworker check` on the very config the row would run.
 *
 * @module
 */

import { join } from "node:path";
import { spawn } from "./child.ts";
import type { CpuBoundMeasure } from "./cpu_bound_report.ts";
import { REPO_DIR, TMP_DIR, type Tools } from "./env.ts";
import { goCpuConsumerBin } from "./go_cpu_consumer_bin.ts";
import { daemonArgs, drainConfig, type Peer, type PeerTarget, startDaemon } from "./peers.ts";

/** The entry's `processes` values measured; 0 is the default, the entry without the key. */
export const CPU_BOUND_PROCESSES = [0, 1, 2, 4] as const;
/** The handler's CPU time per message, as bench/workers/spin20us.ts and the Go program spin. */
export const CPU_BOUND_SPIN_US = 20;
const WORKER = "spin20us";
/** Far longer than `nsqworker check` takes, even on a busy machine. */
const CHECK_TIMEOUT_MS = 60_000;

/** How the section is measured, for the report. */
export const CPU_BOUND_METHOD = "the daemon with bench/workers/spin20us.ts (a busy loop on " +
  "performance.now() for 20 µs a message), the memory store and the entry's processes: N " +
  "(0: none in the config), beside bench/go_cpu_consumer (go-nsq 1.1.0's Consumer, one " +
  "connection, MaxInFlight = the run's, a busy loop on Go's monotonic clock for 20 µs) with " +
  "GOMAXPROCS and handler goroutines = cores; in the throughput rotation; CPU is the whole " +
  "process tree's";

/** A peer of the section, with what it is. */
export interface CpuBoundPeer {
  readonly consumer: CpuBoundMeasure["consumer"];
  /** The entry's `processes`; null for go-nsq. */
  readonly processes: number | null;
  readonly peer: Peer;
  /** Why it cannot run here (null: it can), found before any drain. */
  readonly prepare: (maxInFlight: number) => Promise<string | null>;
}

/** The daemon's config for `processes` (0: the key left out, as the default). */
export function cpuBoundConfig(target: PeerTarget, processes: number): Record<string, unknown> {
  const config = drainConfig(target, "memory", WORKER);
  if (processes === 0) return config;
  const [entry] = config.workers as Record<string, unknown>[];
  return { ...config, workers: [{ ...entry, processes }] };
}

/**
 * Deno permissions of a daemon whose handlers run in `processes` children:
 * it starts them as `deno` (itself, in the compiled binary).
 */
function childPermissions(tools: Tools, processes: number): string[] {
  return processes === 0 ? [] : [`--allow-run=${tools.deno}`];
}

/**
 * Why the daemon refuses a config, from `nsqworker check`'s exit code and
 * output: null when it accepted it (code 0); else its last line (the config
 * error, without the temporary file's path), prefixed with what was asked.
 */
export function refusalReason(
  processes: number,
  code: number,
  output: string,
  configPath: string,
): string | null {
  if (code === 0) return null;
  const lines = output.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const last = lines[lines.length - 1] ?? "";
  const said = last.startsWith(configPath)
    ? last.slice(configPath.length).replace(/^:\d+:\d+:\s*/, "")
    : last;
  const what = code === 2 ? "refuses the config" : `check failed (exit code ${code})`;
  return `the daemon ${what} with processes: ${processes}${said ? `: ${said}` : ""}`;
}

/** Runs `nsqworker check` on the row's config: null when the daemon accepts it, else why not. */
async function checkConfig(
  tools: Tools,
  processes: number,
  maxInFlight: number,
): Promise<string | null> {
  const label = `cpu_bound_check_${processes}`;
  const target: PeerTarget = {
    topic: label,
    channel: "drain",
    // `check` loads the config and the worker; it connects to nothing.
    nsqdTcp: "127.0.0.1:4150",
    lookupdHttp: "http://127.0.0.1:4161",
    maxInFlight,
    runId: label,
  };
  const child = spawn(
    `nsqworker check processes=${processes}`,
    tools.deno,
    await daemonArgs({
      label,
      config: cpuBoundConfig(target, processes),
      permissions: childPermissions(tools, processes),
      command: "check",
    }),
    { cwd: REPO_DIR },
  );
  // Its stdin stays open until it exited: EOF there would make it exit 3 at once.
  const timer = setTimeout(() => child.signal("SIGKILL"), CHECK_TIMEOUT_MS);
  const status = await child.exited;
  clearTimeout(timer);
  await child.stop();
  return refusalReason(processes, status.code, child.tail, join(TMP_DIR, `${label}.yaml`));
}

/** The daemon peers (`processes` 0, 1, 2, 4) and the go-nsq one, in that order. */
export function cpuBoundPeers(tools: Tools, cores: number): CpuBoundPeer[] {
  const daemons = CPU_BOUND_PROCESSES.map((processes): CpuBoundPeer => ({
    consumer: "nsqworker",
    processes,
    peer: {
      name: `nsqworker cpu-bound processes=${processes}`,
      channel: "drain",
      topic: (prefix) => prefix,
      unavailable: null,
      note: null,
      start: async (target) =>
        await startDaemon(tools, {
          label: target.runId,
          config: cpuBoundConfig(target, processes),
          permissions: childPermissions(tools, processes),
        }),
    },
    // The default needs no check: it is the throughput rows' daemon with another worker.
    prepare: (maxInFlight) =>
      processes === 0 ? Promise.resolve(null) : checkConfig(tools, processes, maxInFlight),
  }));
  // Located (or built) by its prepare, before any drain.
  let bin: string | null = null;
  const goPeer: Peer = {
    name: "go-nsq cpu-bound",
    channel: "drain",
    topic: (prefix) => prefix,
    unavailable: null,
    note: `go-nsq Consumer, GOMAXPROCS=${cores}, ${cores} handler goroutines, one connection`,
    start(target) {
      if (bin === null) throw new Error("the go-nsq consumer was not located before the drain");
      return spawn("go-nsq cpu-bound", bin, [
        `--nsqd-tcp-address=${target.nsqdTcp}`,
        `--topic=${target.topic}`,
        `--channel=${target.channel}`,
        `--max-in-flight=${target.maxInFlight}`,
        `--concurrency=${cores}`,
        `--spin=${CPU_BOUND_SPIN_US}us`,
      ], { env: { GOMAXPROCS: String(cores) } });
    },
  };
  const go: CpuBoundPeer = {
    consumer: "go-nsq",
    processes: null,
    peer: goPeer,
    prepare: async () => {
      try {
        bin = await goCpuConsumerBin();
        return null;
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        console.error(`cpu-bound: go-nsq consumer: ${text}`);
        return text.split("\n")[0]!;
      }
    },
  };
  return [...daemons, go];
}

/**
 * Prepares every peer of the section, one after the other (the machine may
 * have few cores), and marks those that cannot run as unavailable, with why.
 */
export async function prepareCpuBound(
  peers: readonly CpuBoundPeer[],
  maxInFlight: number,
): Promise<void> {
  for (const { peer, prepare } of peers) {
    const reason = await prepare(maxInFlight);
    if (reason !== null) {
      peer.unavailable = reason;
      console.error(`cpu-bound: ${peer.name}: not available: ${reason}`);
    }
  }
}
