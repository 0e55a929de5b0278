/**
 * `deno task bench`: nsqworker against its peers on one nsqd, side by side
 * in one run (how to read it: BENCHMARKS.md).
 *
 * It starts its own nsqlookupd and nsqd on loopback, then measures, in this
 * order: throughput (every peer drains a preloaded channel, peers
 * alternating A B C … A B C over several rounds, the median reported, with
 * each peer's CPU time per message from /proc), with the daemon's dedupe
 * stores, the handler-bound daemon, 1, 2 and 4 daemon processes on one
 * channel and a CPU-bound handler with the entry's `processes` 0, 1, 2 and 4
 * beside go-nsq, in the same rotation; publish-to-handler
 * latency; the daemon's memory idle and under load; and, with `--profile`,
 * a CPU profile of one daemon drain. Every process it starts is stopped at
 * the end, on an error, and on Ctrl-C.
 *
 * @module
 */

import { join, resolve } from "node:path";
import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../tests/helpers/nsq/start_nsq.ts";
import { type Jaeger, startJaeger } from "../tests/helpers/jaeger.ts";
import { nsqBin } from "../tools/nsq_bin.ts";
import { killAll, run, sleep, spawn } from "./child.ts";
import { drain, type DrainResult } from "./drain.ts";
import { BENCH_DIR, CACHE_DIR, NODE_DIR, prepareTools, TMP_DIR, type Tools } from "./env.ts";
import { measureLatency } from "./latency.ts";
import { measureIdle, measureLoad, type MemoryResult, readProc } from "./memory.ts";
import { type BenchOptions, parseOptions, SECTIONS, USAGE, UsageError } from "./options.ts";
import { daemonPeer, externalPeers, type Peer } from "./peers.ts";
import { formatProfile, summarizeProfile } from "./profile.ts";
import {
  type BenchResult,
  type DedupeEntry,
  formatResult,
  type HandlerBoundResult,
  MIN_WINDOW_MS,
  type ProcessesEntry,
  type ThroughputEntry,
  type TracingResult,
} from "./report.ts";
import { payloads, UPSTREAM_SAMPLING_RATIO } from "./nsq.ts";
import { PROCESS_COUNTS, PROCESS_VARIANTS, PROCESSES_METHOD, processesPeer } from "./processes.ts";
import {
  CPU_BOUND_METHOD,
  CPU_BOUND_SPIN_US,
  cpuBoundPeers,
  prepareCpuBound,
} from "./cpu_bound.ts";
import { summarizeCpuBound } from "./cpu_bound_report.ts";
import {
  measureIdleViewers,
  measurePageMemory,
  PAGE_METHOD,
  PAGE_VIEWERS,
  pagePeer,
} from "./page.ts";

const LAST_JSON = join(CACHE_DIR, "last.json");

/** OTEL_SERVICE_NAME of the daemon in the tracing rows. */
const TRACING_SERVICE = "nsqworker-bench";

/**
 * The sampled tracing row: the production setting, at the ratio the
 * bodies' upstream sampled at (bench/nsq.ts), so the daemon traces those.
 */
const SAMPLED_TRACING = {
  OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
  OTEL_TRACES_SAMPLER_ARG: String(UPSTREAM_SAMPLING_RATIO),
};

/**
 * The handler-bound row: a handler that awaits 5 ms, 500 in flight, so the
 * ideal is 500 / 5 ms = 100,000 msg/s and the row shows how much of it the
 * daemon's own work leaves.
 */
const HANDLER_BOUND = { name: "nsqworker handler 5 ms", handlerMs: 5, maxInFlight: 500 };

/**
 * The batch-bound row: `handleBatch` awaits 5 ms per call of up to 500
 * items (bench/workers/batch_sleep5.ts), at the handler-bound row's
 * max_in_flight, so the two compare one round trip per batch against one
 * per message.
 */
const BATCH_BOUND = { name: "nsqworker handleBatch 5 ms", batchSize: 500 };

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.trim().split("\n")[0] ?? text;
}

/** The last line a failed daemon printed (its reason), else the first line of the error. */
function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.trim().split("\n").filter((line) => line.trim() !== "");
  const said = lines.slice(1).reverse().find((line) => line.startsWith("nsqworker:"));
  return said ?? lines[0] ?? text;
}

async function describeMachine(tools: Tools): Promise<BenchResult["machine"]> {
  const cpuinfo = await readProc("/proc/cpuinfo");
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const meminfo = await readProc("/proc/meminfo");
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const version = async (label: string, command: string | Error, args: string[]) => {
    if (command instanceof Error) return null;
    try {
      return (await run(label, command, args)).trim().split("\n")[0] ?? null;
    } catch {
      return null;
    }
  };
  const nsqd = await version("nsqd --version", await nsqBin("nsqd"), ["--version"]);
  const node = await version("node --version", tools.node, ["--version"]);
  const python = tools.python instanceof Error ? null : tools.python.version;
  const memGib = Math.round(memKb / 1024 / 1024);
  return {
    description: `${cores} cores (${cpu}), ${memGib} GiB, ${Deno.build.os}/${Deno.build.arch}, ` +
      `Deno ${Deno.version.deno}`,
    cores,
    cpu,
    memory_gib: memGib,
    os: `${Deno.build.os}/${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    node,
    python,
    nsqd,
  };
}

/** Starts a loopback redis-server for the redis store; throws when there is none. */
async function startRedis(tools: Tools): Promise<string> {
  if (tools.redisServer === null) throw new Error("no redis-server on PATH");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  let ready = false;
  const child = spawn("redis-server", tools.redisServer, [
    "--bind",
    "127.0.0.1",
    "--port",
    String(port),
    "--save",
    "",
    "--appendonly",
    "no",
  ], { stdinPipe: false, onLine: (line) => ready ||= line.includes("Ready to accept") });
  const deadline = performance.now() + 10_000;
  while (!ready) {
    if (child.status !== null || performance.now() > deadline) {
      throw new Error(`redis-server did not start:\n${child.tail}`);
    }
    await sleep(20);
  }
  return `redis://127.0.0.1:${port}/0`;
}

interface Runs {
  readonly results: Map<string, DrainResult[]>;
  readonly errors: Map<string, string>;
}

/** Throughput rounds: every peer once per round, in the same order each round. */
async function throughputRounds(
  nsq: NsqCluster,
  peers: readonly Peer[],
  options: BenchOptions,
  signal: AbortSignal,
): Promise<Runs> {
  const results = new Map<string, DrainResult[]>();
  const errors = new Map<string, string>();
  const bodies = payloads(options.messages, options.messageSize);
  for (let round = 1; round <= options.rounds; round++) {
    for (const peer of peers) {
      if (peer.unavailable !== null || errors.has(peer.name)) continue;
      const slug = peer.name.replaceAll(/[^a-zA-Z0-9_-]/g, "_");
      try {
        const result = await drain({
          nsq,
          peer,
          bodies,
          prefix: `r${round}_${slug}`,
          maxInFlight: peer.maxInFlight ?? options.maxInFlight,
          capMs: options.drainCapMs,
          signal,
        });
        results.set(peer.name, [...(results.get(peer.name) ?? []), result]);
        console.error(
          `round ${round}/${options.rounds}  ${peer.name.padEnd(28)} ${
            Math.round(result.msgs_per_sec).toLocaleString("en-US").padStart(9)
          } msg/s  ${
            cpuText(result.cpu_s_per_million)
          }  (start-up ${result.startup_ms} ms, window ${result.window_ms} ms${
            result.window_ms < MIN_WINDOW_MS ? ` < ${MIN_WINDOW_MS} ms: indicative` : ""
          }${result.capped ? `, capped at ${Math.round(result.measured_fraction * 100)} %` : ""})`,
        );
      } catch (error) {
        if (signal.aborted) throw error;
        errors.set(peer.name, reasonOf(error));
        console.error(`round ${round}/${options.rounds}  ${peer.name}: failed: ${error}`);
      }
    }
  }
  return { results, errors };
}

function cpuText(cpu: number | null): string {
  return cpu === null ? "CPU —" : `CPU ${cpu.toFixed(2)} s/1M`;
}

/** Seconds to two decimals, or null. */
function seconds(value: number | null): number | null {
  return value === null ? null : Math.round(value * 100) / 100;
}

function summarize(peer: Peer, runs: Runs, base: number | null): ThroughputEntry {
  const results = runs.results.get(peer.name) ?? [];
  const rounds = results.map((r) => Math.round(r.msgs_per_sec));
  const cpu = results.flatMap((r) => r.cpu_s_per_million === null ? [] : [r.cpu_s_per_million]);
  const rate = median(rounds);
  const error = peer.unavailable ?? runs.errors.get(peer.name);
  return {
    name: peer.name,
    msgs_per_sec: rate,
    ratio_to_nsqworker: rate !== null && base ? Math.round((rate / base) * 1000) / 1000 : null,
    rounds_msgs_per_sec: rounds,
    cpu_s_per_million: seconds(median(cpu)),
    rounds_cpu_s_per_million: cpu.map((value) => seconds(value)!),
    startup_ms_median: median(results.map((r) => r.startup_ms)),
    window_ms_median: median(results.map((r) => r.window_ms)),
    ...(peer.note ? { note: peer.note } : {}),
    ...(error && rate === null ? { error } : {}),
  };
}

/** `handler`: the handler-bound worker at its max_in_flight instead of the no-op one. */
async function profileDrain(
  nsq: NsqCluster,
  tools: Tools,
  options: BenchOptions,
  signal: AbortSignal,
  handler = false,
): Promise<NonNullable<BenchResult["profile"]>> {
  const dir = join(CACHE_DIR, "profile");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const messages = Math.max(options.messages, 200_000);
  const result = await drain({
    nsq,
    peer: handler
      ? daemonPeer(HANDLER_BOUND.name, tools, () => "memory", { worker: "sleep5" })
      : daemonPeer("nsqworker", tools, () => "memory"),
    bodies: payloads(messages, options.messageSize),
    prefix: "profile",
    maxInFlight: handler ? HANDLER_BOUND.maxInFlight : options.maxInFlight,
    capMs: 120_000,
    signal,
    toEmpty: true,
    cpuProfDir: dir,
  });
  console.error(`profile drain: ${Math.round(result.msgs_per_sec)} msg/s under --cpu-prof`);
  const files = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".cpuprofile")) files.push(join(dir, entry.name));
  }
  if (files.length === 0) throw new Error(`the daemon wrote no .cpuprofile into ${dir}`);
  const summary = await summarizeProfile(files[0]!);
  console.error(formatProfile(summary));
  return summary;
}

async function writeChart(tools: Tools, jsonPath: string, chartPath: string): Promise<void> {
  if (tools.node instanceof Error) {
    console.error(`bench: no chart: Node.js packages unavailable: ${firstLine(tools.node)}`);
    return;
  }
  await Deno.mkdir(resolve(chartPath, ".."), { recursive: true });
  await run("chart", tools.node, [
    join(BENCH_DIR, "node", "chart.mjs"),
    NODE_DIR,
    jsonPath,
    resolve(chartPath),
  ], { timeoutMs: 60_000 });
  console.error(`bench: chart written to ${chartPath}`);
}

async function bench(
  options: BenchOptions,
  tools: Tools,
  signal: AbortSignal,
): Promise<BenchResult> {
  const started = performance.now();
  const wants = (name: string) => options.only === null || options.only.has(name);
  const machine = await describeMachine(tools);

  const nsqworker = daemonPeer("nsqworker", tools, () => "memory");
  const external = externalPeers(tools);
  const throughputPeers = [nsqworker, ...external].filter((peer) =>
    wants("throughput") || options.only?.has(peer.name)
  );
  const dedupePeers = wants("dedupe")
    ? [
      daemonPeer("nsqworker dedupe=none", tools, () => "none"),
      daemonPeer("nsqworker dedupe=sqlite", tools, () => `sqlite:${TMP_DIR}/dedupe-{run}.db`),
      daemonPeer("nsqworker dedupe=redis", tools, () => startRedis(tools)),
    ]
    : [];
  const handlerPeer = wants("handler")
    ? daemonPeer(HANDLER_BOUND.name, tools, () => "memory", {
      worker: "sleep5",
      maxInFlight: HANDLER_BOUND.maxInFlight,
    })
    : null;
  // Started at the tracing peer's first drain; an object, as the closure sets it.
  const backend: { jaeger: Promise<Jaeger> | null } = { jaeger: null };
  const tracingPeer = (name: string, sampler: Record<string, string>) =>
    daemonPeer(name, tools, () => "memory", {
      env: async () => ({
        ...(await (backend.jaeger ??= startJaeger())).otelEnv,
        OTEL_SERVICE_NAME: TRACING_SERVICE,
        ...sampler,
      }),
    });
  const tracingPeers = wants("tracing")
    ? {
      sampled: tracingPeer(
        `nsqworker tracing=${UPSTREAM_SAMPLING_RATIO}`,
        SAMPLED_TRACING,
      ),
      on: tracingPeer("nsqworker tracing=on", { OTEL_TRACES_SAMPLER: "always_on" }),
    }
    : null;
  const batchPeer = wants("handler")
    ? daemonPeer(BATCH_BOUND.name, tools, () => "memory", {
      worker: "batch_sleep5",
      maxInFlight: HANDLER_BOUND.maxInFlight,
    })
    : null;
  // The dedupe section's `memory` figure and the tracing section's `off` are the nsqworker peer itself.
  const rotation = [...throughputPeers];
  if ((dedupePeers.length > 0 || tracingPeers !== null) && !rotation.includes(nsqworker)) {
    rotation.unshift(nsqworker);
  }
  rotation.push(...dedupePeers);
  if (handlerPeer !== null) rotation.push(handlerPeer);
  if (tracingPeers !== null) rotation.push(tracingPeers.sampled, tracingPeers.on);
  const processPeers = wants("processes")
    ? PROCESS_VARIANTS.flatMap((variant) =>
      PROCESS_COUNTS.map((count) => ({
        count,
        variant,
        peer: processesPeer(count, variant, tools),
      }))
    )
    : [];
  rotation.push(...processPeers.map(({ peer }) => peer));
  const cores = navigator.hardwareConcurrency;
  const cpuPeers = wants("cpu-bound") ? cpuBoundPeers(tools, cores) : [];
  // Before any drain: a daemon that refuses `processes`, or no go-nsq consumer, is not available.
  await prepareCpuBound(cpuPeers, options.maxInFlight);
  rotation.push(...cpuPeers.map(({ peer }) => peer));
  if (batchPeer !== null) rotation.push(batchPeer);
  const pagePeers = wants("page")
    ? { none: pagePeer(0, tools), viewed: pagePeer(PAGE_VIEWERS, tools) }
    : null;
  if (pagePeers !== null) rotation.push(pagePeers.none, pagePeers.viewed);

  const biggest = Math.max(options.messages, options.memoryMessages, 200_000);
  const nsq = await startNsq({
    nsqdArgs: [`--mem-queue-size=${biggest * 2}`, "--max-rdy-count=2500"],
  });
  try {
    const runs = rotation.length > 0
      ? await throughputRounds(nsq, rotation, options, signal)
      : { results: new Map<string, DrainResult[]>(), errors: new Map<string, string>() };
    const base = median((runs.results.get("nsqworker") ?? []).map((r) => r.msgs_per_sec));
    const throughput = throughputPeers.map((peer) => summarize(peer, runs, base));

    let dedupe: BenchResult["dedupe"] = null;
    if (dedupePeers.length > 0) {
      const none = summarize(dedupePeers[0]!, runs, base).msgs_per_sec;
      const entry = (store: string, peer: Peer): DedupeEntry => {
        const summary = summarize(peer, runs, base);
        const available = summary.msgs_per_sec !== null;
        return {
          store,
          msgs_per_sec: summary.msgs_per_sec,
          ratio_to_none: available && none
            ? Math.round((summary.msgs_per_sec! / none) * 1000) / 1000
            : null,
          rounds_msgs_per_sec: summary.rounds_msgs_per_sec,
          cpu_s_per_million: summary.cpu_s_per_million,
          window_ms_median: summary.window_ms_median,
          available,
          ...(available ? {} : { reason: summary.error ?? "did not run" }),
        };
      };
      dedupe = {
        baseline: "none",
        method: "none = the memory store's methods replaced by no-ops in bench/daemon_main.ts " +
          "(the daemon has no setting that turns dedupe off); same worker, same rotation",
        stores: [
          entry("none", dedupePeers[0]!),
          entry("memory", nsqworker),
          entry("sqlite", dedupePeers[1]!),
          entry("redis", dedupePeers[2]!),
        ],
      };
    }

    const bound = (peer: Peer, ideal: number): HandlerBoundResult => {
      const summary = summarize(peer, runs, base);
      return {
        handler_ms: HANDLER_BOUND.handlerMs,
        max_in_flight: HANDLER_BOUND.maxInFlight,
        ideal_msgs_per_sec: ideal,
        msgs_per_sec: summary.msgs_per_sec,
        fraction_of_ideal: summary.msgs_per_sec === null
          ? null
          : Math.round((summary.msgs_per_sec / ideal) * 1000) / 1000,
        rounds_msgs_per_sec: summary.rounds_msgs_per_sec,
        cpu_s_per_million: summary.cpu_s_per_million,
        window_ms_median: summary.window_ms_median,
        ...(summary.error ? { error: summary.error } : {}),
      };
    };
    // 500 in flight, each message 5 ms; or one 5 ms call per 500 items.
    const ideal = (HANDLER_BOUND.maxInFlight * 1000) / HANDLER_BOUND.handlerMs;
    const handlerBound = handlerPeer === null ? null : bound(handlerPeer, ideal);
    const batchBound = batchPeer === null
      ? null
      : { ...bound(batchPeer, ideal), batch_size: BATCH_BOUND.batchSize };

    let tracing: TracingResult | null = null;
    if (tracingPeers !== null) {
      const row = (peer: Peer) => {
        const { msgs_per_sec, cpu_s_per_million, rounds_msgs_per_sec, window_ms_median } =
          summarize(peer, runs, base);
        return { msgs_per_sec, cpu_s_per_million, rounds_msgs_per_sec, window_ms_median };
      };
      const off = row(nsqworker);
      const sampled = row(tracingPeers.sampled);
      const on = row(tracingPeers.on);
      const toOff = (row: { msgs_per_sec: number | null }) =>
        off.msgs_per_sec && row.msgs_per_sec !== null
          ? Math.round((row.msgs_per_sec / off.msgs_per_sec) * 1000) / 1000
          : null;
      let found: number | null = null;
      let error = runs.errors.get(tracingPeers.on.name) ??
        runs.errors.get(tracingPeers.sampled.name);
      if (backend.jaeger !== null) {
        try {
          found = await (await backend.jaeger).traceCount(TRACING_SERVICE, 100);
        } catch (cause) {
          error ??= `reading jaeger: ${firstLine(cause)}`;
        }
      }
      tracing = {
        exporter: "Jaeger v2 all-in-one (OTLP/HTTP on loopback, memory storage)",
        off,
        sampled,
        sampled_setting: Object.entries(SAMPLED_TRACING).map(([k, v]) => `${k}=${v}`).join(" "),
        on,
        ratio_sampled_to_off: toOff(sampled),
        ratio_on_to_off: toOff(on),
        traces_found: found,
        ...(error ? { error } : {}),
      };
    }

    let processes: BenchResult["processes"] = null;
    if (processPeers.length > 0) {
      const rows = processPeers.map(({ count, variant, peer }): ProcessesEntry => {
        const summary = summarize(peer, runs, base);
        return {
          processes: count,
          worker: variant.worker,
          store: variant.store,
          msgs_per_sec: summary.msgs_per_sec,
          ratio_to_one: null,
          rounds_msgs_per_sec: summary.rounds_msgs_per_sec,
          cpu_s_per_million: summary.cpu_s_per_million,
          window_ms_median: summary.window_ms_median,
          ...(summary.error ? { error: summary.error } : {}),
        };
      });
      processes = {
        method: PROCESSES_METHOD,
        rows: rows.map((row) => {
          const one = rows.find((r) =>
            r.store === row.store && r.worker === row.worker && r.processes === 1
          )?.msgs_per_sec;
          return row.msgs_per_sec !== null && one
            ? { ...row, ratio_to_one: Math.round((row.msgs_per_sec / one) * 100) / 100 }
            : row;
        }),
      };
    }

    const cpuBound = cpuPeers.length === 0 ? null : summarizeCpuBound({
      spinUs: CPU_BOUND_SPIN_US,
      cores,
      maxInFlight: options.maxInFlight,
      method: CPU_BOUND_METHOD,
      measures: cpuPeers.map(({ consumer, processes, peer }) => ({
        ...summarize(peer, runs, base),
        consumer,
        processes,
      })),
    });
    let page: BenchResult["page"] = null;
    if (pagePeers !== null) {
      const row = (peer: Peer) => {
        const { msgs_per_sec, cpu_s_per_million, rounds_msgs_per_sec, window_ms_median, error } =
          summarize(peer, runs, base);
        return {
          msgs_per_sec,
          cpu_s_per_million,
          rounds_msgs_per_sec,
          window_ms_median,
          ...(error ? { error } : {}),
        };
      };
      const none = row(pagePeers.none);
      const viewed = row(pagePeers.viewed);
      const measure = async <T>(what: () => Promise<T>): Promise<T | { error: string }> => {
        try {
          return await what();
        } catch (error) {
          if (signal.aborted) throw error;
          return { error: firstLine(error) };
        }
      };
      const idleCpu = await measure(() =>
        measureIdleViewers(nsq, tools, options.quick ? 5 : 15, signal)
      );
      const memory = await measure(() => measurePageMemory(tools));
      page = {
        viewers: PAGE_VIEWERS,
        method: PAGE_METHOD,
        none,
        viewed,
        ratio_viewed_to_none: none.msgs_per_sec && viewed.msgs_per_sec !== null
          ? Math.round((viewed.msgs_per_sec / none.msgs_per_sec) * 1000) / 1000
          : null,
        events_received: pagePeers.viewed.events,
        idle_cpu: idleCpu,
        memory,
      };
    }

    let latency: BenchResult["latency"] = null;
    if (wants("latency")) {
      try {
        latency = await measureLatency({
          nsq,
          tools,
          rate: options.latencyRate,
          seconds: options.latencySeconds,
          maxInFlight: options.maxInFlight,
          signal,
        });
      } catch (error) {
        if (signal.aborted) throw error;
        latency = { error: firstLine(error) };
        console.error(`latency: failed: ${error}`);
      }
    }

    let memory: BenchResult["memory"] = null;
    if (wants("memory")) {
      try {
        const idle = await measureIdle({ nsq, tools, seconds: options.quick ? 2 : 5, signal });
        console.error(`memory: idle with ${idle.entries} entries: ${idle.rss_kb} kB`);
        const load = await measureLoad({
          nsq,
          tools,
          messages: options.memoryMessages,
          maxInFlight: options.maxInFlight,
          capMs: options.quick ? 90_000 : 600_000,
          signal,
        });
        console.error(`memory: under load: ${load.verdict}`);
        memory = { idle, load } satisfies MemoryResult;
      } catch (error) {
        if (signal.aborted) throw error;
        memory = { error: firstLine(error) };
        console.error(`memory: failed: ${error}`);
      }
    }

    let profile: BenchResult["profile"];
    const profileHandler = options.only?.has("profile-handler") ?? false;
    if (options.profile || options.only?.has("profile") || profileHandler) {
      try {
        profile = await profileDrain(nsq, tools, options, signal, profileHandler);
      } catch (error) {
        if (signal.aborted) throw error;
        profile = { error: firstLine(error) };
        console.error(`profile: failed: ${error}`);
      }
    }

    return {
      date: new Date().toISOString().slice(0, 10),
      machine,
      settings: {
        quick: options.quick,
        rounds: options.rounds,
        messages: options.messages,
        message_size: options.messageSize,
        max_in_flight: options.maxInFlight,
        order: rotation.map((peer) => peer.name),
        method: "each peer drains its own freshly preloaded channel on the same nsqd, one at a " +
          "time, in the same order each round; the rate is taken from nsqd's /stats (depth + " +
          "in flight + deferred) between 90 % and 10 % remaining, interpolated, polled every 10 ms",
      },
      throughput,
      handler_bound: handlerBound,
      batch_bound: batchBound,
      latency,
      memory,
      dedupe,
      tracing,
      processes,
      cpu_bound: cpuBound,
      page,
      ...(profile ? { profile } : {}),
      elapsed_s: (performance.now() - started) / 1000,
    };
  } finally {
    await killAll();
    await nsq.close().catch((error) => console.error(`bench: closing nsq: ${error}`));
    if (backend.jaeger !== null) {
      await (await backend.jaeger).close().catch((error) =>
        console.error(`bench: closing jaeger: ${error}`)
      );
    }
  }
}

async function main(args: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === null) {
    console.log(USAGE);
    return 0;
  }
  const unknown = [...options.only ?? []].filter((name) =>
    !(SECTIONS as readonly string[]).includes(name) &&
    !["profile", "profile-handler"].includes(name) &&
    !["nsqworker", "nsqjs-deno", "nsqjs-node", "go-nsq", "seed-python", "raw-deno"].includes(name)
  );
  if (unknown.length > 0) {
    console.error(`bench: --only: unknown ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  // Temporary files (nsqd's data, configs, sqlite stores) go under .cache/bench/tmp, emptied
  // first: a sqlite store left by an earlier run would turn new messages into duplicates.
  await Deno.remove(TMP_DIR, { recursive: true }).catch(() => {});
  await Deno.mkdir(TMP_DIR, { recursive: true });
  Deno.env.set("TMPDIR", TMP_DIR);

  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.error("bench: interrupted: stopping every process it started ...");
    controller.abort(new Error("interrupted"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const tools = await prepareTools();
    const result = await bench(options, tools, controller.signal);
    console.log(formatResult(result));
    const json = `${JSON.stringify(result, null, 2)}\n`;
    await Deno.writeTextFile(LAST_JSON, json);
    if (options.json !== null) {
      await Deno.mkdir(resolve(options.json, ".."), { recursive: true });
      await Deno.writeTextFile(options.json, json);
      console.error(`bench: JSON written to ${options.json}`);
    }
    if (result.throughput.length > 0 || (result.memory !== null && !("error" in result.memory))) {
      await writeChart(tools, LAST_JSON, options.chart).catch((error) =>
        console.error(`bench: no chart: ${error}`)
      );
    }
    return 0;
  } catch (error) {
    if (controller.signal.aborted) return 130;
    console.error(`bench: ${error instanceof Error ? error.stack ?? error.message : error}`);
    return 1;
  } finally {
    await killAll();
    await Deno.remove(TMP_DIR, { recursive: true }).catch(() => {});
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
