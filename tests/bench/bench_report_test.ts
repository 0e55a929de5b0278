/** The bench's tables (bench/report.ts): rates measured over too short a window are marked. */

import assert from "node:assert/strict";
import { type BenchResult, formatResult, type ThroughputEntry } from "../../bench/report.ts";

function peer(name: string, msgsPerSec: number, windowMs: number | null): ThroughputEntry {
  return {
    name,
    msgs_per_sec: msgsPerSec,
    ratio_to_nsqworker: 1,
    rounds_msgs_per_sec: [msgsPerSec],
    cpu_s_per_million: 1,
    rounds_cpu_s_per_million: [1],
    startup_ms_median: 100,
    window_ms_median: windowMs,
  };
}

function result(throughput: ThroughputEntry[], quick: boolean): BenchResult {
  return {
    date: "2026-12-07",
    machine: { description: "2 cores" },
    settings: {
      quick,
      rounds: 3,
      messages: 50_000,
      message_size: 100,
      max_in_flight: 200,
      order: throughput.map((entry) => entry.name),
      method: "drains",
    },
    throughput,
    handler_bound: null,
    latency: null,
    memory: null,
    dedupe: null,
    elapsed_s: 1,
  };
}

/** The throughput table's row of `name`. */
function row(text: string, name: string): string {
  const line = text.split("\n").find((line) => line.startsWith(`  ${name} `));
  assert.ok(line, `a row for ${name} in:\n${text}`);
  return line;
}

Deno.test("bench report: a rate whose median window is under 1 s is marked indicative, with the shortest window", () => {
  const text = formatResult(
    result([
      peer("short", 143_000, 280),
      peer("long", 98_000, 1_250),
      peer("unknown", 50_000, null),
    ], true),
  );
  assert.match(row(text, "short"), / ~143,000 /);
  assert.match(row(text, "long"), / 98,000 /);
  assert.match(row(text, "unknown"), / 50,000 /);
  assert.match(
    text,
    /^~: the rate's median window \(90 % → 10 % remaining\) was under 1 s \(the shortest 0\.28 s\): indicative only/m,
  );
});

Deno.test("bench report: with every window 1 s or longer nothing is marked", () => {
  const text = formatResult(result([peer("long", 98_000, 1_000)], false));
  assert.match(row(text, "long"), / 98,000 /);
  assert.doesNotMatch(text, /~/);
});
