/**
 * The daemon's resident memory (VmRSS from /proc): idle with 20 entries,
 * and sampled while it drains a large backlog, with a verdict on whether
 * it stayed flat once the dedupe store had filled.
 *
 * @module
 */

import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { output, sleep } from "./child.ts";
import { drain } from "./drain.ts";
import type { Tools } from "./env.ts";
import { payloads } from "./nsq.ts";
import { daemonPeer, startDaemon } from "./peers.ts";

const IDLE_ENTRIES = 20;
const SAMPLE_EVERY_MS = 250;

/** One RSS sample of the load run. */
export interface RssSample {
  readonly t_ms: number;
  readonly rss_kb: number;
  readonly drained_pct: number;
}

/** What the memory section reports. */
export interface MemoryResult {
  readonly idle: { entries: number; rss_kb: number; samples_kb: number[] } | null;
  readonly load: {
    messages: number;
    msgs_per_sec: number;
    start_rss_kb: number;
    peak_rss_kb: number;
    end_rss_kb: number;
    flat: boolean;
    verdict: string;
    samples: RssSample[];
  } | null;
}

/**
 * VmRSS of a process in kB, or null when it is gone. Deno asks for every
 * permission (`-A`) to read anything under /proc, so `cat` reads it.
 */
export async function rssKb(pid: number): Promise<number | null> {
  const status = await readProc(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) : null;
}

/** A /proc file's text, or "" when it cannot be read. */
export function readProc(path: string): Promise<string> {
  return output("cat", [path]);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** RSS of the daemon subscribed to 20 idle topics, once all 20 are connected. */
export async function measureIdle(options: {
  nsq: NsqCluster;
  tools: Tools;
  seconds: number;
  signal: AbortSignal;
}): Promise<NonNullable<MemoryResult["idle"]>> {
  const { nsq, tools, signal } = options;
  const nsqd = nsq.nsqds[0]!;
  const topics = Array.from(
    { length: IDLE_ENTRIES },
    (_, i) => `idle_${String(i).padStart(2, "0")}`,
  );
  const daemon = await startDaemon(tools, {
    label: "memory-idle",
    config: {
      nsq: { nsqd_tcp_addresses: [nsqd.tcpAddress] },
      log: { level: "warning" },
      http: { listen: null },
      workers: topics.map((topic) => ({ topic, channel: "idle", worker: "noop" })),
    },
  });
  try {
    const deadline = performance.now() + 60_000;
    for (;;) {
      const stats = await nsq.stats();
      const connected = stats.topics.filter((t) =>
        topics.includes(t.topic_name) && t.channels.some((c) =>
          c.clients.length > 0
        )
      ).length;
      if (connected === IDLE_ENTRIES) break;
      if (daemon.status !== null || performance.now() > deadline) {
        throw new Error(`only ${connected} of ${IDLE_ENTRIES} entries connected:\n${daemon.tail}`);
      }
      await sleep(50, signal);
    }
    // Let start-up garbage be collected before sampling.
    await sleep(1000, signal);
    const samples: number[] = [];
    const end = performance.now() + options.seconds * 1000;
    while (performance.now() < end) {
      const rss = await rssKb(daemon.pid);
      if (rss !== null) samples.push(rss);
      await sleep(SAMPLE_EVERY_MS, signal);
    }
    return { entries: IDLE_ENTRIES, rss_kb: median(samples), samples_kb: samples };
  } finally {
    await daemon.stop();
    for (const topic of topics) {
      await fetch(`${nsqd.httpUrl}/topic/delete?topic=${topic}`, { method: "POST" })
        .then((r) => r.body?.cancel());
    }
  }
}

/**
 * Drains `messages` with one entry and samples its RSS. Flat means: the
 * peak RSS of the last quarter of the drain is at most 10 MiB or 10 % above
 * that of the third quarter (the first 100,000 messages fill the memory
 * dedupe store up to its default capacity, so the first half may grow).
 */
export async function measureLoad(options: {
  nsq: NsqCluster;
  tools: Tools;
  messages: number;
  maxInFlight: number;
  capMs: number;
  signal: AbortSignal;
}): Promise<NonNullable<MemoryResult["load"]>> {
  const { nsq, tools, messages, signal } = options;
  const samples: RssSample[] = [];
  let nextSample = 0;
  const pending: Promise<void>[] = [];
  const result = await drain({
    nsq,
    peer: daemonPeer("nsqworker", tools, () => "memory"),
    bodies: payloads(messages, 100),
    prefix: "memory_load",
    maxInFlight: options.maxInFlight,
    capMs: options.capMs,
    signal,
    toEmpty: true,
    onSample: (sample, child) => {
      if (sample.t_ms < nextSample) return;
      nextSample = sample.t_ms + SAMPLE_EVERY_MS;
      pending.push(
        rssKb(child.pid).then((rss) => {
          if (rss === null) return;
          samples.push({
            t_ms: Math.round(sample.t_ms),
            rss_kb: rss,
            drained_pct: Math.round((1 - sample.remaining / messages) * 1000) / 10,
          });
        }),
      );
    },
  });
  await Promise.all(pending);
  samples.sort((a, b) => a.t_ms - b.t_ms);
  // GC makes RSS a sawtooth: compare the peaks of the last two quarters.
  const peak = (low: number, high: number) =>
    Math.max(
      ...samples.filter((s) => s.drained_pct >= low && s.drained_pct <= high).map((s) => s.rss_kb),
    );
  const third = peak(50, 75);
  const fourth = peak(75, 100);
  const growthKb = fourth - third;
  const flat = Number.isFinite(growthKb) && growthKb <= Math.max(10 * 1024, third * 0.1);
  const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
  const verdict = Number.isFinite(growthKb)
    ? `peak RSS ${mib(third)} while 50–75 % drained, ${mib(fourth)} while 75–100 % (${
      growthKb >= 0 ? "+" : ""
    }${mib(growthKb)})`
    : "too few samples to judge";
  const draining = samples.filter((s) => s.drained_pct > 0);
  const rss = draining.map((s) => s.rss_kb);
  return {
    messages,
    msgs_per_sec: Math.round(result.msgs_per_sec),
    start_rss_kb: rss[0] ?? NaN,
    peak_rss_kb: Math.max(...rss),
    end_rss_kb: rss[rss.length - 1] ?? NaN,
    flat,
    verdict,
    samples,
  };
}
