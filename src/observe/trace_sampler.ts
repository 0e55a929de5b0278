/**
 * Which deliveries are traced: OpenTelemetry's standard samplers, read from
 * `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` as Deno reads them, and
 * decided before any span is started. A span started only to be dropped by
 * Deno's sampler still costs about as much as the rest of a no-op delivery.
 *
 * The decisions are the ones Deno's own sampler makes (the OpenTelemetry
 * SDKs' rule), so that a span this module lets through is one Deno samples
 * too, and every service of a trace agrees.
 *
 * @module
 */

import type { TraceParent } from "./trace_parent.ts";

/** The names `OTEL_TRACES_SAMPLER` takes. */
export const SAMPLER_NAMES = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

/** One of {@linkcode SAMPLER_NAMES}. */
export type SamplerName = typeof SAMPLER_NAMES[number];

/** A sampler as configured. */
export interface TraceSampler {
  readonly name: SamplerName;
  /** `parentbased_*`: a delivery with a parent follows the parent's sampled flag. */
  readonly parentBased: boolean;
  /**
   * The share of traces it samples by trace id: 1 for `*always_on`, 0 for
   * `*always_off`, the argument for `*traceidratio`. Under `parentbased_*`
   * it decides only new traces.
   */
  readonly ratio: number;
}

/** OpenTelemetry's default, and Deno's. */
export const DEFAULT_SAMPLER: TraceSampler = Object.freeze({
  name: "parentbased_always_on",
  parentBased: true,
  ratio: 1,
});

// Rust's float syntax, which Deno parses the argument with (case-insensitive inf and nan too).
const RUST_FLOAT = /^[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)$/i;

/**
 * The sampler named by `OTEL_TRACES_SAMPLER` (default
 * `parentbased_always_on`), with the ratio `OTEL_TRACES_SAMPLER_ARG` gives a
 * `*traceidratio` one, read as Deno reads them: both trimmed; an argument
 * that is no number, or is unset, means 1; one outside 0 to 1 is clamped
 * (NaN counts as 0). An unknown name gives the default; Deno itself refuses
 * to start on one when its OpenTelemetry is on.
 *
 * @example
 * ```ts
 * import { readTraceSampler } from "./trace_sampler.ts";
 *
 * const env: Record<string, string> = {
 *   OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
 *   OTEL_TRACES_SAMPLER_ARG: "0.01",
 * };
 * readTraceSampler((name) => env[name]);
 * // { name: "parentbased_traceidratio", parentBased: true, ratio: 0.01 }
 * ```
 */
export function readTraceSampler(env: (name: string) => string | undefined): TraceSampler {
  const name = (env("OTEL_TRACES_SAMPLER") ?? "").trim();
  if (!(SAMPLER_NAMES as readonly string[]).includes(name)) return DEFAULT_SAMPLER;
  const sampler = name as SamplerName;
  const parentBased = sampler.startsWith("parentbased_");
  const root = parentBased ? sampler.slice("parentbased_".length) : sampler;
  const ratio = root === "always_on"
    ? 1
    : root === "always_off"
    ? 0
    : ratioOf(env("OTEL_TRACES_SAMPLER_ARG"));
  return Object.freeze({ name: sampler, parentBased, ratio });
}

function ratioOf(argument: string | undefined): number {
  const text = (argument ?? "").trim();
  if (!RUST_FLOAT.test(text)) return 1;
  const lower = text.toLowerCase();
  const value = lower.endsWith("nan")
    ? NaN
    : lower.endsWith("inf") || lower.endsWith("infinity")
    ? (lower.startsWith("-") ? -Infinity : Infinity)
    : Number(text);
  return Number.isNaN(value) ? 0 : Math.min(1, Math.max(0, value));
}

/**
 * The sampler of `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` in this
 * process's environment; the default when the daemon may not read them.
 */
export function envTraceSampler(): TraceSampler {
  return readTraceSampler((name) => {
    try {
      if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
        return undefined;
      }
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  });
}

const TWO_POW_32 = 2 ** 32;
const TWO_POW_63 = 2 ** 63;

/**
 * OpenTelemetry's `TraceIdRatioBased` decision, as Deno (Rust) and Go make
 * it: the trace id's last 8 bytes, as a big-endian integer shifted right by
 * one, below `ratio` × 2⁶³. Every service at the same ratio decides the same
 * for a trace.
 *
 * @example
 * ```ts
 * import { traceIdRatioSampled } from "./trace_sampler.ts";
 *
 * traceIdRatioSampled("0af7651916cd43dd0000000000000001", 0.01); // true
 * traceIdRatioSampled("0af7651916cd43ddffffffffffffffff", 0.99); // false
 * ```
 */
export function traceIdRatioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (!(ratio > 0)) return false;
  // (low >> 1) < bound ⇔ low < 2·bound; both sides split in 32-bit halves, exact in doubles.
  const twiceBound = 2 * Math.floor(ratio * TWO_POW_63);
  const boundHigh = Math.floor(twiceBound / TWO_POW_32);
  const boundLow = twiceBound - boundHigh * TWO_POW_32;
  const high = Number.parseInt(traceId.slice(16, 24), 16);
  const low = Number.parseInt(traceId.slice(24, 32), 16);
  return high < boundHigh || (high === boundHigh && low < boundLow);
}

/**
 * Whether a delivery whose body carries `parent` is sampled: under
 * `parentbased_*` its sampled flag decides, otherwise the ratio on its trace id.
 *
 * @example
 * ```ts
 * import { DEFAULT_SAMPLER, sampledWithParent } from "./trace_sampler.ts";
 *
 * const parent = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" };
 * sampledWithParent(DEFAULT_SAMPLER, { ...parent, traceFlags: 0 }); // false
 * ```
 */
export function sampledWithParent(sampler: TraceSampler, parent: TraceParent): boolean {
  if (sampler.parentBased) return (parent.traceFlags & 1) === 1;
  // A parent read from a body decodes its trace id only when asked for it.
  return sampler.ratio >= 1 ||
    (sampler.ratio > 0 && traceIdRatioSampled(parent.traceId, sampler.ratio));
}

/**
 * Whether a delivery without a parent is sampled, on `traceId`, the id of
 * the new trace it starts.
 *
 * @example
 * ```ts
 * import { readTraceSampler, sampledAsRoot } from "./trace_sampler.ts";
 *
 * const sampler = readTraceSampler((name) => name === "OTEL_TRACES_SAMPLER" ? "always_off" : undefined);
 * sampledAsRoot(sampler, "0af7651916cd43dd8448eb211c80319c"); // false
 * ```
 */
export function sampledAsRoot(sampler: TraceSampler, traceId: string): boolean {
  return traceIdRatioSampled(traceId, sampler.ratio);
}
