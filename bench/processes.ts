/**
 * The "processes" section: 1, 2 and 4 daemon processes draining one channel
 * (NSQ spreads its messages over them), as several daemons on one host run
 * (docs/scale.md).
 *
 * @module
 */

import { join } from "node:path";
import { spawn } from "./child.ts";
import { BENCH_DIR, REPO_DIR, TMP_DIR, type Tools } from "./env.ts";
import { daemonArgs, drainConfig, type Peer } from "./peers.ts";

/** The process counts measured. */
export const PROCESS_COUNTS = [1, 2, 4] as const;
/**
 * The variants measured: the no-op worker with the memory store (one per
 * process) and with the sqlite store (one file for all), and a worker that
 * spins 20 µs of CPU per message with the memory store.
 */
export const PROCESS_VARIANTS = [
  { store: "memory", worker: "noop" },
  { store: "sqlite", worker: "noop" },
  { store: "memory", worker: "spin20us" },
] as const;

/** One of {@linkcode PROCESS_VARIANTS}. */
export type ProcessVariant = (typeof PROCESS_VARIANTS)[number];

/** How the section is measured, for the report. */
export const PROCESSES_METHOD = "N daemon processes (bench/processes_main.ts starts them) on one " +
  "channel, each with the run's max_in_flight; CPU is the whole process tree's; sqlite: one file " +
  "shared by the N processes; spin20us: a worker that spins 20 µs of CPU per message";

/** The peer that runs `count` daemons of `variant` on the drained channel. */
export function processesPeer(count: number, variant: ProcessVariant, tools: Tools): Peer {
  const { store, worker } = variant;
  return {
    name: `nsqworker ×${count} processes ${worker} ${store}`,
    channel: "drain",
    topic: (prefix) => prefix,
    unavailable: null,
    note: null,
    async start(target) {
      const spec = store === "memory" ? "memory" : `sqlite:${TMP_DIR}/dedupe-${target.runId}.db`;
      const args = await daemonArgs({
        label: target.runId,
        config: drainConfig(target, spec, worker),
      });
      return spawn(`nsqworker ×${count} ${worker} ${store}`, tools.deno, [
        "run",
        "--no-prompt",
        `--allow-run=${tools.deno}`,
        join(BENCH_DIR, "processes_main.ts"),
        String(count),
        tools.deno,
        ...args,
      ], { cwd: REPO_DIR });
    },
  };
}
