/**
 * The bench's result: its JSON shape and the tables printed from it.
 *
 * @module
 */

import { type CpuBoundResult, cpuBoundTable } from "./cpu_bound_report.ts";
import type { LatencyResult } from "./latency.ts";
import type { MemoryResult } from "./memory.ts";
import type { PageIdleCpu, PageMemory } from "./page.ts";
import type { ProfileSummary } from "./profile.ts";

/** One throughput peer's figures: the median over rounds, and every round. */
export interface ThroughputEntry {
  readonly name: string;
  /** Median over rounds; null when it could not run. */
  readonly msgs_per_sec: number | null;
  readonly ratio_to_nsqworker: number | null;
  readonly rounds_msgs_per_sec: number[];
  /** The peer's CPU seconds (user + system) per million messages: median over rounds. */
  readonly cpu_s_per_million: number | null;
  readonly rounds_cpu_s_per_million: number[];
  readonly startup_ms_median: number | null;
  /**
   * The median drain's measured window (90 % → 10 % remaining), in ms:
   * under {@linkcode MIN_WINDOW_MS} the rate is indicative only.
   */
  readonly window_ms_median: number | null;
  readonly note?: string;
  readonly error?: string;
}

/** One dedupe store's figures, as a ratio to no dedupe at all. */
export interface DedupeEntry {
  readonly store: string;
  readonly msgs_per_sec: number | null;
  readonly ratio_to_none: number | null;
  readonly rounds_msgs_per_sec: number[];
  readonly cpu_s_per_million: number | null;
  readonly window_ms_median?: number | null;
  readonly available: boolean;
  readonly reason?: string;
}

/** N daemon processes draining one channel with one store kind. */
export interface ProcessesEntry {
  readonly processes: number;
  /** The bench/workers/ module each process runs. */
  readonly worker: string;
  readonly store: string;
  readonly msgs_per_sec: number | null;
  /** Throughput as a ratio to one process with the same store. */
  readonly ratio_to_one: number | null;
  readonly rounds_msgs_per_sec: number[];
  /** CPU seconds of all N processes together per million messages. */
  readonly cpu_s_per_million: number | null;
  readonly window_ms_median?: number | null;
  readonly error?: string;
}

/** The daemon with a handler that awaits `handler_ms`, against the ideal `max_in_flight / handler_ms`. */
export interface HandlerBoundResult {
  readonly handler_ms: number;
  readonly max_in_flight: number;
  readonly ideal_msgs_per_sec: number;
  readonly msgs_per_sec: number | null;
  readonly fraction_of_ideal: number | null;
  readonly rounds_msgs_per_sec: number[];
  readonly cpu_s_per_million: number | null;
  readonly window_ms_median?: number | null;
  readonly error?: string;
}

/**
 * The daemon's throughput with tracing off (the default), on with the
 * production sampler, and on for every message, exporting to a real Jaeger.
 */
export interface TracingResult {
  readonly exporter: string;
  readonly off: TracingRow;
  /** Under {@linkcode TracingResult.sampled_setting}: the bodies' upstream sampled 1 in 100. */
  readonly sampled?: TracingRow;
  /** The sampler's environment of the sampled row. */
  readonly sampled_setting?: string;
  /** `OTEL_TRACES_SAMPLER=always_on`: a span for every message. */
  readonly on: TracingRow;
  /** sampled / off; null when either did not run. */
  readonly ratio_sampled_to_off?: number | null;
  /** on / off; null when either did not run. */
  readonly ratio_on_to_off: number | null;
  /** Traces of the daemon a search of Jaeger found afterwards (at most 100): the spans did arrive. */
  readonly traces_found: number | null;
  readonly error?: string;
}

/** One row of {@linkcode TracingResult}. */
export interface TracingRow {
  readonly msgs_per_sec: number | null;
  readonly cpu_s_per_million: number | null;
  readonly rounds_msgs_per_sec: number[];
  readonly window_ms_median?: number | null;
}

/** What open pages cost the consumer, and the memory of what the page keeps. */
export interface PageResult {
  readonly viewers: number;
  readonly method: string;
  readonly none: TracingRow & { readonly error?: string };
  readonly viewed: TracingRow & { readonly error?: string };
  /** Throughput with the viewers as a ratio to none. */
  readonly ratio_viewed_to_none: number | null;
  /** Server-sent events the viewers read over every round. */
  readonly events_received: number;
  /** The CPU the viewers cost an idle daemon. */
  readonly idle_cpu: PageIdleCpu | { readonly error: string };
  readonly memory: PageMemory | { readonly error: string };
}

/** Everything a run measured. */
export interface BenchResult {
  readonly date: string;
  readonly machine: Record<string, unknown> & { description: string };
  readonly settings: {
    quick: boolean;
    rounds: number;
    messages: number;
    message_size: number;
    max_in_flight: number;
    order: string[];
    method: string;
  };
  readonly throughput: ThroughputEntry[];
  readonly handler_bound: HandlerBoundResult | null;
  /** The same 5 ms per `handleBatch` call of up to `batch_size` items, at the same max_in_flight. */
  readonly batch_bound?: (HandlerBoundResult & { readonly batch_size: number }) | null;
  readonly latency: LatencyResult | { error: string } | null;
  readonly memory: MemoryResult | { error: string } | null;
  readonly dedupe: { baseline: string; method: string; stores: DedupeEntry[] } | null;
  readonly tracing?: TracingResult | null;
  readonly processes?: { method: string; rows: ProcessesEntry[] } | null;
  /** A handler that costs 20 µs of CPU a message: the entry's `processes` 0, 1, 2, 4 and go-nsq. */
  readonly cpu_bound?: CpuBoundResult | null;
  readonly page?: PageResult | null;
  readonly profile?: ProfileSummary | { error: string };
  readonly elapsed_s: number;
}

/**
 * The shortest measured window that a rate is more than indicative for: a
 * drain of a few hundred milliseconds swings up to 2× between rounds.
 */
export const MIN_WINDOW_MS = 1_000;

/** Marks a rate measured over less than {@linkcode MIN_WINDOW_MS}. */
const SHORT_MARK = "~";

const int = (n: number) => Math.round(n).toLocaleString("en-US");

/** Whether a median window is known and too short. */
const short = (windowMs: number | null | undefined) =>
  windowMs !== null && windowMs !== undefined && windowMs < MIN_WINDOW_MS;

/** A rate, marked when its window was too short to be more than indicative. */
const rate = (msgsPerSec: number | null, windowMs: number | null | undefined) =>
  msgsPerSec === null ? "—" : `${short(windowMs) ? SHORT_MARK : ""}${int(msgsPerSec)}`;

/** The median windows of every drain-based row of `result`. */
function windows(result: BenchResult): (number | null | undefined)[] {
  return [
    ...result.throughput.map((peer) => peer.window_ms_median),
    result.handler_bound?.window_ms_median,
    result.batch_bound?.window_ms_median,
    ...(result.dedupe?.stores ?? []).map((store) => store.window_ms_median),
    result.tracing?.off.window_ms_median,
    result.tracing?.on.window_ms_median,
    ...(result.processes?.rows ?? []).map((row) => row.window_ms_median),
    ...(result.cpu_bound?.rows ?? []).map((row) => row.window_ms_median),
    result.page?.none.window_ms_median,
    result.page?.viewed.window_ms_median,
  ];
}
const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
const cpu = (seconds: number | null) => seconds === null ? "—" : seconds.toFixed(2);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) =>
    "  " + row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
      .trimEnd()
  );
}

/** The readable tables of a result. */
export function formatResult(result: BenchResult): string {
  const { settings } = result;
  const lines: string[] = [
    `nsqworker bench, ${result.date}, ${result.machine.description}${
      settings.quick ? " (--quick: fewer messages and rounds, noisy)" : ""
    }`,
    "",
  ];
  const shortest = Math.min(...windows(result).filter(short) as number[]);
  if (Number.isFinite(shortest)) {
    lines.push(
      `${SHORT_MARK}: the rate's median window (90 % → 10 % remaining) was under ` +
        `${MIN_WINDOW_MS / 1000} s (the shortest ${(shortest / 1000).toFixed(2)} s): indicative ` +
        "only, rounds that short can differ by 2×; more --messages lengthen it",
      "",
    );
  }
  if (result.throughput.length > 0) {
    lines.push(
      `Throughput: drain of ${int(settings.messages)} × ${settings.message_size} B preloaded, ` +
        `90 % → 10 % remaining, max_in_flight ${settings.max_in_flight}, ` +
        `median of ${settings.rounds} alternating rounds`,
    );
    const rows = [["peer", "msg/s", "× nsqworker", "CPU s / 1M", "rounds (msg/s)", "note"]];
    for (const peer of result.throughput) {
      rows.push([
        peer.name,
        rate(peer.msgs_per_sec, peer.window_ms_median),
        peer.ratio_to_nsqworker === null ? "—" : peer.ratio_to_nsqworker.toFixed(2),
        cpu(peer.cpu_s_per_million),
        peer.rounds_msgs_per_sec.map(int).join(" "),
        peer.error ? `failed: ${peer.error}` : peer.note ?? "",
      ]);
    }
    lines.push(
      ...table(rows),
      "  (CPU s / 1M: the peer's user + system CPU seconds per million messages, whole process",
      "  tree, from /proc over the measured window)",
      "",
    );
  }
  const bound = result.handler_bound;
  if (bound) {
    lines.push(
      `Handler-bound: a handler that awaits ${bound.handler_ms} ms, max_in_flight ` +
        `${bound.max_in_flight}: ideal ${int(bound.ideal_msgs_per_sec)} msg/s`,
    );
    const rows = [["msg/s", "of ideal", "CPU s / 1M", "rounds (msg/s)"]];
    rows.push(
      bound.msgs_per_sec === null ? ["—", "—", "—", `failed: ${bound.error ?? "did not run"}`] : [
        rate(bound.msgs_per_sec, bound.window_ms_median),
        bound.fraction_of_ideal === null ? "—" : bound.fraction_of_ideal.toFixed(2),
        cpu(bound.cpu_s_per_million),
        bound.rounds_msgs_per_sec.map(int).join(" "),
      ],
    );
    lines.push(...table(rows), "");
  }
  const batch = result.batch_bound;
  if (batch) {
    const perMessage = bound?.msgs_per_sec ?? null;
    lines.push(
      `Batch-bound: handleBatch awaits ${batch.handler_ms} ms per call of up to ` +
        `${batch.batch_size} items, max_in_flight ${batch.max_in_flight}`,
    );
    const rows = [["msg/s", "× handle 5 ms", "CPU s / 1M", "rounds (msg/s)"]];
    rows.push(
      batch.msgs_per_sec === null ? ["—", "—", "—", `failed: ${batch.error ?? "did not run"}`] : [
        rate(batch.msgs_per_sec, batch.window_ms_median),
        perMessage ? (batch.msgs_per_sec / perMessage).toFixed(2) : "—",
        cpu(batch.cpu_s_per_million),
        batch.rounds_msgs_per_sec.map(int).join(" "),
      ],
    );
    lines.push(...table(rows), "");
  }
  const latency = result.latency;
  if (latency !== null) {
    if ("error" in latency) lines.push(`Latency: failed: ${latency.error}`, "");
    else {
      lines.push(
        `Latency: publish → handler, ${int(latency.rate_per_sec)} msg/s for ${latency.seconds} s`,
      );
      const rows = [["consumer", "received", "p50", "p90", "p99", "max", "mean"]];
      const consumers = [
        { name: "nsqworker", figures: latency },
        ...latency.references.map((figures) => ({ name: figures.name, figures })),
      ];
      for (const { name, figures } of consumers) {
        rows.push([
          name,
          `${int(figures.received)}/${int(figures.published)}`,
          ...[figures.p50_ms, figures.p90_ms, figures.p99_ms, figures.max_ms, figures.mean_ms]
            .map((ms) => `${ms.toFixed(2)} ms`),
        ]);
      }
      lines.push(...table(rows), `  (${latency.note})`, "");
    }
  }
  const memory = result.memory;
  if (memory !== null) {
    if ("error" in memory) lines.push(`Memory: failed: ${memory.error}`, "");
    else {
      lines.push("Memory: nsqworker resident set size (VmRSS)");
      const rows = [["state", "RSS", "detail"]];
      if (memory.idle) {
        rows.push([`idle, ${memory.idle.entries} entries`, mib(memory.idle.rss_kb), ""]);
      }
      if (memory.load) {
        const load = memory.load;
        rows.push([
          `draining ${int(load.messages)}`,
          `${mib(load.start_rss_kb)} → peak ${mib(load.peak_rss_kb)} → ${mib(load.end_rss_kb)}`,
          `${load.flat ? "flat" : "NOT FLAT"}: ${load.verdict}; ${int(load.msgs_per_sec)} msg/s`,
        ]);
      }
      lines.push(...table(rows), "");
    }
  }
  const dedupe = result.dedupe;
  if (dedupe !== null) {
    lines.push(`Dedupe cost: nsqworker throughput per store, as a ratio to ${dedupe.baseline}`);
    const rows = [["store", "msg/s", "× none", "CPU s / 1M", "rounds (msg/s)"]];
    for (const store of dedupe.stores) {
      rows.push(
        store.available
          ? [
            store.store,
            rate(store.msgs_per_sec, store.window_ms_median),
            store.ratio_to_none === null ? "—" : store.ratio_to_none.toFixed(2),
            cpu(store.cpu_s_per_million),
            store.rounds_msgs_per_sec.map(int).join(" "),
          ]
          : [store.store, "—", "—", "—", `not available: ${store.reason}`],
      );
    }
    lines.push(...table(rows), `  (${dedupe.method})`, "");
  }
  const tracing = result.tracing;
  if (tracing) {
    lines.push(
      "Tracing cost: nsqworker throughput with OTEL_DENO unset (off) and true (sampled, on)",
    );
    const rows = [["tracing", "msg/s", "× off", "CPU s / 1M", "rounds (msg/s)"]];
    const shown: (readonly [string, TracingRow, number | null | undefined])[] = [
      ["off", tracing.off, 1],
      ...(tracing.sampled
        ? [["sampled", tracing.sampled, tracing.ratio_sampled_to_off] as const]
        : []),
      ["on", tracing.on, tracing.ratio_on_to_off],
    ];
    for (const [name, row, ratio] of shown) {
      rows.push([
        name,
        rate(row.msgs_per_sec, row.window_ms_median),
        ratio?.toFixed(2) ?? "—",
        cpu(row.cpu_s_per_million),
        row.rounds_msgs_per_sec.map(int).join(" "),
      ]);
    }
    lines.push(
      ...table(rows),
      ...(tracing.sampled_setting ? [`  (sampled: ${tracing.sampled_setting})`] : []),
      `  (on: exporting to ${tracing.exporter}; traces found there afterwards, of 100 asked: ` +
        `${tracing.traces_found ?? "—"}${tracing.error ? `; ${tracing.error}` : ""})`,
      "",
    );
  }
  if (result.processes) {
    lines.push("Processes: N daemons draining one channel, as a ratio to one process");
    const rows = [[
      "processes",
      "worker",
      "store",
      "msg/s",
      "× 1",
      "CPU s / 1M",
      "rounds (msg/s)",
    ]];
    for (const row of result.processes.rows) {
      rows.push([
        String(row.processes),
        row.worker,
        row.store,
        rate(row.msgs_per_sec, row.window_ms_median),
        row.ratio_to_one === null ? "—" : row.ratio_to_one.toFixed(2),
        cpu(row.cpu_s_per_million),
        row.error ?? row.rounds_msgs_per_sec.map(int).join(" "),
      ]);
    }
    lines.push(...table(rows), `  (${result.processes.method})`, "");
  }
  if (result.cpu_bound) {
    const { title, rows, after } = cpuBoundTable(result.cpu_bound, { rate, cpu, int });
    lines.push(title, ...table(rows), ...after, "");
  }
  const page = result.page;
  if (page) {
    lines.push(`Page cost: the drain with ${page.viewers} open pages (server-sent events) vs none`);
    const rows = [["viewers", "msg/s", "× none", "CPU s / 1M", "rounds (msg/s)"]];
    for (
      const [viewers, row, ratio] of [[0, page.none, 1], [
        page.viewers,
        page.viewed,
        page.ratio_viewed_to_none,
      ]] as const
    ) {
      rows.push([
        String(viewers),
        rate(row.msgs_per_sec, row.window_ms_median),
        ratio?.toFixed(3) ?? "—",
        cpu(row.cpu_s_per_million),
        row.error ?? row.rounds_msgs_per_sec.map(int).join(" "),
      ]);
    }
    const memory = "error" in page.memory
      ? `memory not measured: ${page.memory.error}`
      : `memory at ${page.memory.entries} entries: history ${page.memory.history_kib} KiB; ` +
        `dead letter rings full ${page.memory.rings_typical_kib} KiB (small records), ` +
        `${page.memory.rings_largest_kib} KiB (largest)`;
    const idle = "error" in page.idle_cpu
      ? `idle CPU not measured: ${page.idle_cpu.error}`
      : `idle daemon over ${page.idle_cpu.seconds} s each: ${page.idle_cpu.cpu_ms_per_s_none} ms ` +
        `CPU/s without viewers, ${page.idle_cpu.cpu_ms_per_s_viewed} with them: the page costs ` +
        `${page.idle_cpu.page_cpu_ms_per_s} ms/s, at most ` +
        `${(page.idle_cpu.page_cpu_ms_per_s / 10).toFixed(2)} % of a saturated daemon`;
    lines.push(
      ...table(rows),
      `  (${page.method}; events read: ${page.events_received})`,
      `  (${idle})`,
      `  (${memory})`,
      "",
    );
  }
  lines.push(`Took ${result.elapsed_s.toFixed(0)} s.`);
  return lines.join("\n");
}
