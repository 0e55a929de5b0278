/**
 * The bench's command line.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Everything a bench run is told. */
export interface BenchOptions {
  readonly quick: boolean;
  /** Where the JSON result goes (always also written to `.cache/bench/last.json`). */
  readonly json: string | null;
  /** Where the PNG chart goes. */
  readonly chart: string;
  /** Peers and sections to run; null: all of them. */
  readonly only: ReadonlySet<string> | null;
  readonly rounds: number;
  /** Messages preloaded for each throughput drain. */
  readonly messages: number;
  readonly messageSize: number;
  readonly maxInFlight: number;
  /** The longest a single drain may take before its rate is taken from what it did. */
  readonly drainCapMs: number;
  readonly latencyRate: number;
  readonly latencySeconds: number;
  /** Messages the daemon drains while its memory is sampled. */
  readonly memoryMessages: number;
  /** Write a CPU profile of one nsqworker drain and print its top functions. */
  readonly profile: boolean;
}

/** The sections of a run; `--only` takes these and peer names. */
export const SECTIONS = [
  "throughput",
  "handler",
  "latency",
  "memory",
  "dedupe",
  "tracing",
  "processes",
  "cpu-bound",
  "page",
] as const;

export const USAGE = `deno task bench [options]

Measures nsqworker against its peers on one nsqd it starts itself
(see BENCHMARKS.md).

Options:
  --quick               fewer messages and rounds: under 3 minutes on 2 cores
  --json FILE           write every figure to FILE (under bench/results/ or .cache/)
  --chart FILE          the PNG chart (default .cache/bench/chart.png)
  --only A,B            only these peers and/or sections
                        (throughput, handler, latency, memory, dedupe, tracing,
                        processes: 1, 2 and 4 daemons on one channel,
                        cpu-bound: 20 µs of CPU a message, processes 0/1/2/4
                        and go-nsq,
                        page: the drain with 5 open pages vs none,
                        profile, profile-handler: the handler-bound worker)
  --rounds N            throughput rounds (default 5, quick 3)
  --messages N          messages per drain (default 200000, quick 50000)
  --max-in-flight N     for every peer (default 200)
  --profile             CPU-profile one nsqworker drain and print its top functions
  -h, --help            this text
`;

/** A bad flag, reported with the usage. */
export class UsageError extends Error {
  override name = "UsageError";
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) {
    throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** Parses the bench's arguments; null for `--help`. */
export function parseOptions(args: readonly string[]): BenchOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "string" },
        chart: { type: "string" },
        only: { type: "string" },
        rounds: { type: "string" },
        messages: { type: "string" },
        "max-in-flight": { type: "string" },
        profile: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return null;
  const quick = values.quick;
  const maxInFlight = positiveInteger("max-in-flight", values["max-in-flight"], 200);
  if (maxInFlight > 2500) {
    throw new UsageError(
      `--max-in-flight must be at most 2500 (nsqd's max RDY), got ${maxInFlight}`,
    );
  }
  const only = values.only === undefined
    ? null
    : new Set(values.only.split(",").map((name) => name.trim()).filter((name) => name !== ""));
  return {
    quick,
    json: values.json ?? null,
    chart: values.chart ?? ".cache/bench/chart.png",
    only,
    rounds: positiveInteger("rounds", values.rounds, quick ? 3 : 5),
    messages: positiveInteger("messages", values.messages, quick ? 50_000 : 200_000),
    messageSize: 100,
    maxInFlight,
    drainCapMs: quick ? 10_000 : 120_000,
    latencyRate: 1000,
    latencySeconds: quick ? 3 : 10,
    memoryMessages: quick ? 200_000 : 1_000_000,
    profile: values.profile,
  };
}
