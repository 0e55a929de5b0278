/**
 * Reads a V8 `.cpuprofile` (what `deno run --cpu-prof` writes) and sums
 * self time per function, to show where the daemon's per-message path
 * spends its time.
 *
 * ```sh
 * deno run --allow-read bench/profile.ts .cache/bench/profile/CPU.*.cpuprofile
 * ```
 *
 * @module
 */

import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One function's share of the samples. */
export interface HotFunction {
  readonly function: string;
  /** `file:line` (1-based), relative to the repository when inside it. */
  readonly location: string;
  readonly self_ms: number;
  /** Of all samples, idle included. */
  readonly self_pct: number;
  /** Of the samples that were not idle (the program or the GC running). */
  readonly busy_pct: number;
}

/** A summary of one profile. */
export interface ProfileSummary {
  readonly file: string;
  readonly total_ms: number;
  readonly idle_pct: number;
  readonly gc_pct: number;
  readonly top: HotFunction[];
}

const REPO_URL = new URL("../", import.meta.url).href;

function shortUrl(url: string): string {
  if (url.startsWith(REPO_URL)) return url.slice(REPO_URL.length);
  const npm = /\/npm\/[^/]+\/(.+)$/.exec(url);
  if (npm) return `npm:${npm[1]}`;
  return url.replace(/^ext:/, "ext:");
}

/** Sums self time per function (name and location) and returns the `limit` largest. */
export async function summarizeProfile(path: string, limit = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await Deno.readTextFile(path)) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time is the delta to the next sample.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const byFunction = new Map<string, { fn: string; location: string; us: number }>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === "(idle)") idle += us;
    if (frame.functionName === "(garbage collector)") gc += us;
    const fn = frame.functionName || "(anonymous)";
    const location = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : "";
    const key = `${fn}\0${location}`;
    const entry = byFunction.get(key) ?? { fn, location, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const busy = total - idle;
  const top = [...byFunction.values()]
    .filter((entry) => entry.fn !== "(idle)")
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((entry) => ({
      function: entry.fn,
      location: entry.location,
      self_ms: Math.round(entry.us / 1000),
      self_pct: Math.round((entry.us / total) * 1000) / 10,
      busy_pct: Math.round((entry.us / busy) * 1000) / 10,
    }));
  return {
    file: path,
    total_ms: Math.round(total / 1000),
    idle_pct: Math.round((idle / total) * 1000) / 10,
    gc_pct: Math.round((gc / total) * 1000) / 10,
    top,
  };
}

/** The summary as a text table. */
export function formatProfile(summary: ProfileSummary): string {
  const lines = [
    `CPU profile ${summary.file}`,
    `  ${summary.total_ms} ms sampled, ${summary.idle_pct} % idle, ${summary.gc_pct} % GC`,
    "  self%  busy%  self ms  function  (location)",
  ];
  for (const hot of summary.top) {
    lines.push(
      `  ${hot.self_pct.toFixed(1).padStart(5)}  ${hot.busy_pct.toFixed(1).padStart(5)}  ${
        String(hot.self_ms).padStart(7)
      }  ${hot.function}  ${hot.location}`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  for (const path of Deno.args) {
    console.log(formatProfile(await summarizeProfile(path, 40)));
  }
  if (Deno.args.length === 0) {
    console.error(
      `usage: deno run --allow-read ${fileURLToPath(import.meta.url)} FILE.cpuprofile…`,
    );
    Deno.exit(2);
  }
}
