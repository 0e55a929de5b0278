/**
 * The CPU-bound row's figures: its JSON shape, the ratios it is judged by
 * and its printed table. Every message costs the handler 20 µs of CPU, so
 * the handler, not the daemon's own work, sets the pace, and only handlers
 * on more cores (`processes`) go faster.
 *
 * @module
 */

/** The figures of one consumer of the CPU-bound row. */
export interface CpuBoundRow {
  readonly name: string;
  readonly consumer: "nsqworker" | "go-nsq";
  /** The entry's `processes` (0: the daemon's own thread); null for go-nsq. */
  readonly processes: number | null;
  /** Median over rounds; null when it did not run. */
  readonly msgs_per_sec: number | null;
  /** msg/s as a ratio to `processes` 0; null when either did not run. */
  readonly ratio_to_processes_0: number | null;
  readonly rounds_msgs_per_sec: number[];
  /** CPU seconds of the whole process tree per million messages: median over rounds. */
  readonly cpu_s_per_million: number | null;
  readonly rounds_cpu_s_per_million: number[];
  readonly window_ms_median: number | null;
  readonly available: boolean;
  /** Why it is not available: the daemon's refusal of the config, a failed build, a failed run. */
  readonly reason?: string;
  readonly note?: string;
}

/** A ratio the row is judged by, against its target. */
export interface CpuBoundTarget {
  /** e.g. `processes=2 / processes=0` */
  readonly name: string;
  readonly ratio: number | null;
  /** The ratio wanted, at least. */
  readonly target: number;
  /** null when a side of the ratio did not run. */
  readonly met: boolean | null;
}

/** The CPU-bound section of the bench's JSON. */
export interface CpuBoundResult {
  /** CPU time each message costs in the handler, in µs. */
  readonly spin_us: number;
  /** The machine's cores: go-nsq's GOMAXPROCS and handler count. */
  readonly cores: number;
  readonly max_in_flight: number;
  readonly method: string;
  readonly rows: CpuBoundRow[];
  readonly targets: CpuBoundTarget[];
}

/** What one consumer measured, as the bench summarizes any peer. */
export interface CpuBoundMeasure {
  readonly name: string;
  readonly consumer: CpuBoundRow["consumer"];
  readonly processes: number | null;
  readonly msgs_per_sec: number | null;
  readonly rounds_msgs_per_sec: number[];
  readonly cpu_s_per_million: number | null;
  readonly rounds_cpu_s_per_million: number[];
  readonly window_ms_median: number | null;
  readonly note?: string;
  readonly error?: string;
}

/** The ratios the row is judged by: more processes against one thread, and against go-nsq. */
export const CPU_BOUND_TARGETS = [
  { name: "processes=2 / processes=0", over: 2, under: 0, target: 1.6 },
  { name: "processes=2 / go-nsq", over: 2, under: "go-nsq", target: 0.8 },
] as const;

const ratio = (over: number | null | undefined, under: number | null | undefined) =>
  over === null || over === undefined || !under ? null : Math.round((over / under) * 1000) / 1000;

/** The section's result: each consumer's row with its ratio to `processes` 0, and the targets. */
export function summarizeCpuBound(input: {
  readonly spinUs: number;
  readonly cores: number;
  readonly maxInFlight: number;
  readonly method: string;
  readonly measures: readonly CpuBoundMeasure[];
}): CpuBoundResult {
  const rateOf = (side: number | "go-nsq") =>
    input.measures.find((m) =>
      side === "go-nsq"
        ? m.consumer === "go-nsq"
        : m.consumer === "nsqworker" && m.processes === side
    )?.msgs_per_sec;
  const rows = input.measures.map((m): CpuBoundRow => {
    const available = m.msgs_per_sec !== null;
    return {
      name: m.name,
      consumer: m.consumer,
      processes: m.processes,
      msgs_per_sec: m.msgs_per_sec,
      ratio_to_processes_0: ratio(m.msgs_per_sec, rateOf(0)),
      rounds_msgs_per_sec: m.rounds_msgs_per_sec,
      cpu_s_per_million: m.cpu_s_per_million,
      rounds_cpu_s_per_million: m.rounds_cpu_s_per_million,
      window_ms_median: m.window_ms_median,
      available,
      ...(available ? {} : { reason: m.error ?? "did not run" }),
      ...(m.note ? { note: m.note } : {}),
    };
  });
  const targets = CPU_BOUND_TARGETS.map(({ name, over, under, target }): CpuBoundTarget => {
    const value = ratio(rateOf(over), rateOf(under));
    return { name, ratio: value, target, met: value === null ? null : value >= target };
  });
  return {
    spin_us: input.spinUs,
    cores: input.cores,
    max_in_flight: input.maxInFlight,
    method: input.method,
    rows,
    targets,
  };
}

/** The label of a row in the table. */
function label(row: CpuBoundRow): string {
  return row.consumer === "go-nsq" ? "go-nsq" : `nsqworker processes=${row.processes}`;
}

/** Columns of the table; `rate` and `cpu` format as the bench's other tables do. */
export function cpuBoundTable(
  result: CpuBoundResult,
  format: {
    rate(msgsPerSec: number | null, windowMs: number | null): string;
    cpu(seconds: number | null): string;
    int(n: number): string;
  },
): { title: string; rows: string[][]; after: string[] } {
  const rows = [["consumer", "msg/s", "× processes=0", "CPU s / 1M", "rounds (msg/s)"]];
  for (const row of result.rows) {
    rows.push(
      row.available
        ? [
          label(row),
          format.rate(row.msgs_per_sec, row.window_ms_median),
          row.ratio_to_processes_0 === null ? "—" : row.ratio_to_processes_0.toFixed(2),
          format.cpu(row.cpu_s_per_million),
          row.rounds_msgs_per_sec.map(format.int).join(" "),
        ]
        : [label(row), "—", "—", "—", `not available: ${row.reason}`],
    );
  }
  const verdict = (met: boolean | null) => met === null ? "not measured" : met ? "met" : "NOT met";
  return {
    title: `CPU-bound: every message costs the handler ${result.spin_us} µs of CPU, ` +
      `max_in_flight ${result.max_in_flight}, ${result.cores} cores`,
    rows,
    after: [
      ...result.targets.map((t) =>
        `  ${t.name}: ${t.ratio === null ? "—" : t.ratio.toFixed(2)} ` +
        `(target ≥ ${t.target}): ${verdict(t.met)}`
      ),
      ...result.rows.flatMap((row) => row.note ? [`  (${label(row)}: ${row.note})`] : []),
      `  (${result.method})`,
    ],
  };
}
