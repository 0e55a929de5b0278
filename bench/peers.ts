/**
 * The consumers the bench compares, each started as its own process on the
 * same nsqd with the same `max_in_flight`: the daemon, bare nsqjs Readers on
 * Deno and Node.js, go-nsq's bench_reader, the Python seed and a raw Deno
 * reader; plus the daemon with each dedupe store, for the dedupe cost.
 *
 * @module
 */

import { join } from "node:path";
import { type Child, spawn } from "./child.ts";
import { BENCH_DIR, NODE_DIR, REPO_DIR, TMP_DIR, type Tools } from "./env.ts";

/** What a peer is started against. */
export interface PeerTarget {
  readonly topic: string;
  readonly channel: string;
  /** `127.0.0.1:PORT` */
  readonly nsqdTcp: string;
  /** `http://127.0.0.1:PORT` */
  readonly lookupdHttp: string;
  readonly maxInFlight: number;
  /** A unique name for the run's files. */
  readonly runId: string;
  /** Where a CPU profile goes, when one is wanted (the daemon only). */
  readonly cpuProfDir?: string;
}

/** One consumer the bench can drain a channel with. */
export interface Peer {
  readonly name: string;
  /** The channel it reads (the seed's naming rules fix its own). */
  readonly channel: string;
  /** The nsqd topic of a run whose unique prefix is `prefix`. */
  topic(prefix: string): string;
  /** Starts it. */
  start(target: PeerTarget): Promise<Child> | Child;
  /** Why it cannot run here, found while preparing. */
  unavailable: string | null;
  /** Shown with its figures, e.g. what stands in for it. */
  note: string | null;
  /** Its own `max_in_flight`, where it is not the run's. */
  readonly maxInFlight?: number;
}

/** Settings of one daemon process. */
export interface DaemonRun {
  readonly label: string;
  readonly config: Record<string, unknown>;
  /** Replace the memory store with no-ops (the dedupe baseline). */
  readonly noDedupe?: boolean;
  readonly cpuProfDir?: string;
  /** Added to the daemon's environment (e.g. OTEL_DENO and the exporter's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Deno permissions beyond the usual ones (e.g. `--allow-run` for handler processes). */
  readonly permissions?: readonly string[];
  /** `check`: validate the config and load the worker, then exit; default `run`. */
  readonly command?: "run" | "check";
}

/**
 * Starts the daemon (bench/daemon_main.ts, i.e. src/cli/cli.ts with
 * bench/workers/) on a config written as JSON (which is YAML), with named
 * permissions only, at log level warning.
 */
export async function startDaemon(tools: Tools, run: DaemonRun): Promise<Child> {
  return spawn(`nsqworker ${run.label}`, tools.deno, await daemonArgs(run), {
    cwd: REPO_DIR,
    ...(run.env ? { env: run.env } : {}),
  });
}

/** Writes the run's config and returns the arguments of `deno` that run the daemon on it. */
export async function daemonArgs(run: DaemonRun): Promise<string[]> {
  const configPath = join(TMP_DIR, `${run.label}.yaml`);
  await Deno.writeTextFile(configPath, JSON.stringify(run.config, null, 2));
  return [
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env",
    "--allow-sys=hostname",
    `--allow-write=${TMP_DIR}`,
    ...(run.permissions ?? []),
    `--config=${join(REPO_DIR, "deno.json")}`,
    ...(run.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${run.cpuProfDir}`] : []),
    join(BENCH_DIR, "daemon_main.ts"),
    ...(run.noDedupe ? ["--no-dedupe"] : []),
    run.command ?? "run",
    "-c",
    configPath,
    "--log-level",
    "warning",
  ];
}

/** A one-entry daemon config for `worker` (a module of bench/workers/). */
export function drainConfig(
  target: PeerTarget,
  store: string,
  worker = "noop",
): Record<string, unknown> {
  return {
    nsq: { nsqd_tcp_addresses: [target.nsqdTcp] },
    defaults: { max_in_flight: target.maxInFlight, dead_letter_topic: null },
    dedupe: { store },
    log: { level: "warning" },
    http: { listen: null },
    workers: [{ topic: target.topic, channel: target.channel, worker }],
  };
}

const sameTopic = (prefix: string) => prefix;

function unavailableIf(value: unknown): string | null {
  return value instanceof Error ? value.message.trim().split("\n")[0] ?? "unavailable" : null;
}

/**
 * The daemon with the no-op worker (or `options.worker`) and dedupe store
 * `store()` (`none`: the no-op baseline); `{run}` in the store is replaced
 * by the run's id. The store is asked for once, at the first start (redis
 * starts its server then).
 */
export function daemonPeer(
  name: string,
  tools: Tools,
  store: () => Promise<string> | string,
  options: {
    worker?: string;
    maxInFlight?: number;
    note?: string;
    /** The daemon's extra environment, asked for once, at the first start. */
    env?: () => Promise<Readonly<Record<string, string>>>;
  } = {},
): Peer {
  let spec: Promise<string> | null = null;
  let env: Promise<Readonly<Record<string, string>>> | null = null;
  return {
    name,
    channel: "drain",
    topic: sameTopic,
    unavailable: null,
    note: options.note ?? null,
    ...(options.maxInFlight ? { maxInFlight: options.maxInFlight } : {}),
    async start(target: PeerTarget): Promise<Child> {
      spec ??= Promise.resolve(store());
      const resolved = (await spec).replaceAll("{run}", target.runId);
      if (options.env) env ??= options.env();
      return await startDaemon(tools, {
        label: target.runId,
        config: drainConfig(target, resolved === "none" ? "memory" : resolved, options.worker),
        noDedupe: resolved === "none",
        ...(env ? { env: await env } : {}),
        ...(target.cpuProfDir ? { cpuProfDir: target.cpuProfDir } : {}),
      });
    },
  };
}

/** The throughput peers other than the daemon. */
export function externalPeers(tools: Tools): Peer[] {
  const python = tools.python;
  const seedNote = python instanceof Error || python.seedError === null
    ? null
    : `the seed (nsqworker 0.2.11) does not run on ${python.version} here: ${python.seedError}; ` +
      `a bare pynsq Reader is measured in its place`;
  return [
    {
      name: "nsqjs-deno",
      channel: "drain",
      topic: sameTopic,
      unavailable: null,
      note: null,
      start: (t) =>
        spawn("nsqjs-deno", tools.deno, [
          "run",
          "--no-prompt",
          "--allow-net=127.0.0.1",
          "--allow-read",
          "--allow-env",
          "--allow-sys=hostname",
          `--config=${join(REPO_DIR, "deno.json")}`,
          join(BENCH_DIR, "readers", "nsqjs_deno.ts"),
          ...readerFlags(t),
        ], { cwd: REPO_DIR }),
    },
    {
      name: "nsqjs-node",
      channel: "drain",
      topic: sameTopic,
      unavailable: unavailableIf(tools.node),
      note: null,
      start: (t) =>
        spawn("nsqjs-node", tools.node as string, [
          join(BENCH_DIR, "readers", "nsqjs_node.mjs"),
          NODE_DIR,
          ...readerFlags(t),
        ], { cwd: REPO_DIR }),
    },
    {
      name: "go-nsq",
      channel: "drain",
      topic: sameTopic,
      unavailable: unavailableIf(tools.benchReader),
      // One connection (GOMAXPROCS=1) with RDY = max_in_flight, like every other peer.
      note: "nsq's bench_reader (go-nsq protocol code), GOMAXPROCS=1: one connection",
      start: (t) =>
        spawn("go-nsq", tools.benchReader as string, [
          `--nsqd-tcp-address=${t.nsqdTcp}`,
          `--topic=${t.topic}`,
          `--channel=${t.channel}`,
          `--rdy=${t.maxInFlight}`,
          "--size=100",
          "--runfor=10m",
        ], { env: { GOMAXPROCS: "1" }, stdinPipe: false }),
    },
    {
      name: "seed-python",
      channel: "drain_noop",
      topic: (prefix) => `${prefix}_bench`,
      unavailable: unavailableIf(python),
      note: seedNote,
      start: (t) => {
        const script = seedNote === null ? "seed_main.py" : "pynsq_reader.py";
        return spawn("seed-python", (python as { path: string }).path, [
          join(BENCH_DIR, "seed", script),
          "--lookupd",
          t.lookupdHttp,
          "--topic-prefix",
          t.topic.slice(0, -"bench".length),
          "--max-in-flight",
          String(t.maxInFlight),
        ], { cwd: join(BENCH_DIR, "seed"), env: { PYTHONDONTWRITEBYTECODE: "1" } });
      },
    },
    {
      name: "raw-deno",
      channel: "drain",
      topic: sameTopic,
      unavailable: null,
      note: "bench/probe_raw_reader.ts: Deno.connect, no nsqjs",
      start: (t) =>
        spawn("raw-deno", tools.deno, [
          "run",
          "--no-prompt",
          "--allow-net=127.0.0.1",
          join(BENCH_DIR, "probe_raw_reader.ts"),
          ...readerFlags(t),
        ], { cwd: REPO_DIR }),
    },
  ];
}

function readerFlags(t: PeerTarget): string[] {
  return [
    "--nsqd",
    t.nsqdTcp,
    "--topic",
    t.topic,
    "--channel",
    t.channel,
    "--max-in-flight",
    String(t.maxInFlight),
  ];
}
