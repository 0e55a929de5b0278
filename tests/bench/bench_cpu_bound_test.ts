/**
 * The bench's CPU-bound row (bench/cpu_bound.ts, bench/cpu_bound_report.ts,
 * bench/go_cpu_consumer_bin.ts): its ratios and targets, its table, the
 * config each row runs, the reason a refused config is reported with, and
 * the Go program's cache folder and pinned go-nsq. Nothing here builds or
 * runs the Go program.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CPU_BOUND_SPIN_US, cpuBoundConfig, refusalReason } from "../../bench/cpu_bound.ts";
import { type CpuBoundMeasure, summarizeCpuBound } from "../../bench/cpu_bound_report.ts";
import { sourceCacheDir } from "../../bench/go_cpu_consumer_bin.ts";
import type { PeerTarget } from "../../bench/peers.ts";
import { type BenchResult, formatResult } from "../../bench/report.ts";
import { REPO_DIR } from "../helpers/daemon_process.ts";

function measure(
  processes: number | null,
  msgsPerSec: number | null,
  error?: string,
): CpuBoundMeasure {
  return {
    name: processes === null ? "go-nsq cpu-bound" : `nsqworker cpu-bound processes=${processes}`,
    consumer: processes === null ? "go-nsq" : "nsqworker",
    processes,
    msgs_per_sec: msgsPerSec,
    rounds_msgs_per_sec: msgsPerSec === null ? [] : [msgsPerSec],
    cpu_s_per_million: msgsPerSec === null ? null : 21.5,
    rounds_cpu_s_per_million: msgsPerSec === null ? [] : [21.5],
    window_ms_median: msgsPerSec === null ? null : 1_500,
    ...(error ? { error } : {}),
  };
}

const summary = (measures: CpuBoundMeasure[]) =>
  summarizeCpuBound({ spinUs: 20, cores: 2, maxInFlight: 200, method: "m", measures });

Deno.test("cpu-bound: the ratios to processes 0 and the two targets, met and not", () => {
  const result = summary([
    measure(0, 40_000),
    measure(1, 39_000),
    measure(2, 70_000),
    measure(4, 72_000),
    measure(null, 90_000),
  ]);
  assert.deepEqual(result.rows.map((row) => row.ratio_to_processes_0), [
    1,
    0.975,
    1.75,
    1.8,
    2.25,
  ]);
  assert.ok(result.rows.every((row) => row.available && row.reason === undefined));
  assert.deepEqual(result.targets, [
    { name: "processes=2 / processes=0", ratio: 1.75, target: 1.6, met: true },
    { name: "processes=2 / go-nsq", ratio: 0.778, target: 0.8, met: false },
  ]);
});

Deno.test("cpu-bound: rows that could not run are not available, with the reason, and the targets not measured", () => {
  const refused = "the daemon refuses the config with processes: 2: workers[0].processes is " +
    "not a known key";
  const result = summary([
    measure(0, 40_000),
    measure(2, null, refused),
    measure(null, null),
  ]);
  const [zero, two, go] = result.rows;
  assert.equal(zero!.available, true);
  assert.equal(two!.available, false);
  assert.equal(two!.reason, refused);
  assert.equal(two!.ratio_to_processes_0, null);
  assert.equal(go!.reason, "did not run");
  assert.deepEqual(result.targets.map((t) => [t.ratio, t.met]), [[null, null], [null, null]]);

  const text = formatResult(
    {
      date: "2026-12-07",
      machine: { description: "2 cores" },
      settings: {
        quick: true,
        rounds: 3,
        messages: 50_000,
        message_size: 100,
        max_in_flight: 200,
        order: [],
        method: "drains",
      },
      throughput: [],
      handler_bound: null,
      latency: null,
      memory: null,
      dedupe: null,
      cpu_bound: result,
      elapsed_s: 1,
    } satisfies BenchResult,
  );
  assert.match(text, /^CPU-bound: every message costs the handler 20 µs of CPU, .*2 cores$/m);
  assert.match(text, /^ {2}nsqworker processes=0 +40,000 +1\.00 +21\.50 +40,000$/m);
  assert.match(
    text,
    /^ {2}nsqworker processes=2 +— +— +— +not available: the daemon refuses the config with processes: 2: workers\[0\]\.processes is not a known key$/m,
  );
  assert.match(text, /^ {2}go-nsq +— +— +— +not available: did not run$/m);
  assert.match(text, /^ {2}processes=2 \/ processes=0: — \(target ≥ 1\.6\): not measured$/m);
  assert.match(text, /^ {2}processes=2 \/ go-nsq: — \(target ≥ 0\.8\): not measured$/m);
});

Deno.test("cpu-bound: processes 0 leaves the key out; N ≥ 1 puts processes: N in the entry", () => {
  const target: PeerTarget = {
    topic: "t",
    channel: "drain",
    nsqdTcp: "127.0.0.1:4150",
    lookupdHttp: "http://127.0.0.1:4161",
    maxInFlight: 200,
    runId: "r",
  };
  const entry = (processes: number) =>
    (cpuBoundConfig(target, processes).workers as Record<string, unknown>[])[0];
  assert.deepEqual(entry(0), { topic: "t", channel: "drain", worker: "spin20us" });
  assert.deepEqual(entry(2), { topic: "t", channel: "drain", worker: "spin20us", processes: 2 });
  assert.equal((cpuBoundConfig(target, 4).workers as unknown[]).length, 1);
});

Deno.test("cpu-bound: the reason of a refused config is the daemon's line without the file's path", () => {
  const path = "/repo/.cache/bench/tmp/cpu_bound_check_1.yaml";
  assert.equal(refusalReason(1, 0, `${path}: OK: 1 entry, workers: spin20us\n`, path), null);
  assert.equal(
    refusalReason(
      1,
      2,
      `\n${path}:6:7: workers[0].processes is not a known key (known keys: topic)\n`,
      path,
    ),
    "the daemon refuses the config with processes: 1: workers[0].processes is not a known key " +
      "(known keys: topic)",
  );
  assert.equal(
    refusalReason(4, 1, "nsqworker: cannot load worker spin20us\n", path),
    "the daemon check failed (exit code 1) with processes: 4: nsqworker: cannot load worker " +
      "spin20us",
  );
  assert.equal(
    refusalReason(2, 3, "", path),
    "the daemon check failed (exit code 3) with processes: 2",
  );
});

Deno.test("go_cpu_consumer: the cache folder follows the sources' content, not their order", async () => {
  const files = [
    { name: "go.mod", text: "module m\n" },
    { name: "main.go", text: "package main\n" },
  ];
  const dir = await sourceCacheDir("/cache", files);
  assert.match(dir, /^\/cache\/[0-9a-f]{16}$/);
  assert.equal(await sourceCacheDir("/cache", [...files].reverse()), dir);
  const edited = [files[0]!, { name: "main.go", text: "package main \n" }];
  assert.notEqual(await sourceCacheDir("/cache", edited), dir);
  // One file holding what two others hold, separators and all, is another build.
  const two = [{ name: "go.mod", text: "x" }, { name: "main.go", text: "y" }];
  const one = [{ name: "go.mod", text: "x\0main.go\0y" }];
  assert.notEqual(await sourceCacheDir("/cache", one), await sourceCacheDir("/cache", two));
});

Deno.test("go_cpu_consumer: go-nsq and snappy are pinned at the versions NSQ v1.3.0 builds with", async () => {
  const read = (...path: string[]) => Deno.readTextFile(join(REPO_DIR, ...path));
  const version = (goMod: string, module: string) =>
    new RegExp(`^\\s*(?:require\\s+)?${module.replaceAll(".", "\\.")} (v\\S+)`, "m").exec(
      goMod,
    )?.[1];
  const nsq = await read("tools", "nsq", "go.mod");
  const ours = await read("bench", "go_cpu_consumer", "go.mod");
  for (const module of ["github.com/nsqio/go-nsq", "github.com/golang/snappy"]) {
    const pinned = version(nsq, module);
    assert.ok(pinned, `${module} in tools/nsq/go.mod`);
    assert.equal(version(ours, module), pinned, `${module} in bench/go_cpu_consumer/go.mod`);
  }
});

Deno.test("cpu-bound: the daemon's worker spins as long as the go-nsq consumer is told to", async () => {
  // The Go program gets --spin from CPU_BOUND_SPIN_US; the worker has its own constant.
  const worker = await Deno.readTextFile(join(REPO_DIR, "bench", "workers", "spin20us.ts"));
  const spinMs = /^const SPIN_MS = ([\d.]+);$/m.exec(worker)?.[1];
  assert.ok(spinMs, "bench/workers/spin20us.ts declares SPIN_MS");
  assert.equal(Number(spinMs) * 1000, CPU_BOUND_SPIN_US);
});
