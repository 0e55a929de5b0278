/**
 * The "page" section: what open pages cost the consumer. The daemon drains
 * with its HTTP listener on and nobody looking, then with
 * {@linkcode PAGE_VIEWERS} viewers, each loading the page and its history
 * once and then reading its server-sent events, as a browser does; and the
 * memory the page's history and dead letter rings take at 100 entries
 * (bench/page_memory.ts).
 *
 * @module
 */

import { join } from "node:path";
import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { run, sleep } from "./child.ts";
import { cpuSeconds } from "./cpu.ts";
import { BENCH_DIR, REPO_DIR, type Tools } from "./env.ts";
import { drainConfig, type Peer, startDaemon } from "./peers.ts";

/** The viewers of the measured row. */
export const PAGE_VIEWERS = 5;

/** How the section is measured, for the report. */
export const PAGE_METHOD = `the no-op drain with http.listen on (history sampled every 5 s), ` +
  `with none and with ${PAGE_VIEWERS} viewers: each GETs /, /page/history, then reads ` +
  `/page/events (one state a second) until the daemon stops; same rotation`;

/** The daemon with the page open in `viewers` viewers, and the events they read in all. */
export function pagePeer(viewers: number, tools: Tools): Peer & { readonly events: number } {
  const seen = { events: 0 };
  return {
    get events() {
      return seen.events;
    },
    name: `nsqworker page ${viewers} viewers`,
    channel: "drain",
    topic: (prefix) => prefix,
    unavailable: null,
    note: null,
    async start(target) {
      const port = freePort();
      const config = { ...drainConfig(target, "memory"), http: { listen: `127.0.0.1:${port}` } };
      const child = await startDaemon(tools, { label: target.runId, config });
      for (let i = 0; i < viewers; i++) {
        void view(`http://127.0.0.1:${port}`, () => child.status === null, seen);
      }
      return child;
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** One viewer: the page, its history, then the events until the daemon stops. */
async function view(
  base: string,
  alive: () => boolean,
  seen: { events: number },
): Promise<void> {
  while (alive()) {
    try {
      for (const path of ["/", "/page/history"]) {
        const response = await fetch(`${base}${path}`);
        await response.body?.cancel();
        if (!response.ok) throw new Error(`${path} answered ${response.status}`);
      }
      const events = await fetch(`${base}/page/events`);
      const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        seen.events += value.split("event: state").length - 1;
      }
    } catch {
      // Not listening yet, or stopped: look again while the daemon runs.
      await sleep(50);
    }
  }
}

/** The daemon's CPU while idle, without and with the viewers. */
export interface PageIdleCpu {
  readonly seconds: number;
  readonly cpu_ms_per_s_none: number;
  readonly cpu_ms_per_s_viewed: number;
  /** What the viewers cost the daemon's thread, per second. */
  readonly page_cpu_ms_per_s: number;
  readonly events_received: number;
}

/**
 * The CPU the viewers cost an idle daemon, from /proc, over `seconds`
 * without them and then `seconds` with them: a drain's rounds vary by
 * several percent, more than the viewers cost, while this isolates them.
 * The daemon handles messages on one thread, so each millisecond a second
 * spent on the page is at most 0.1 % of a saturated daemon's throughput.
 */
export async function measureIdleViewers(
  nsq: NsqCluster,
  tools: Tools,
  seconds: number,
  signal: AbortSignal,
): Promise<PageIdleCpu> {
  const port = freePort();
  const target = {
    topic: `page_idle_${Date.now()}`,
    channel: "drain",
    nsqdTcp: nsq.nsqds[0]!.tcpAddress,
    lookupdHttp: nsq.lookupd!.httpUrl,
    maxInFlight: 200,
    runId: "page_idle",
  };
  const config = { ...drainConfig(target, "memory"), http: { listen: `127.0.0.1:${port}` } };
  const child = await startDaemon(tools, { label: target.runId, config });
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = performance.now() + 30_000;
    for (;;) {
      const ready = await fetch(`${base}/ready`).then(async (r) => {
        await r.body?.cancel();
        return r.ok;
      }, () => false);
      if (ready) break;
      if (child.status !== null || performance.now() > deadline) {
        throw new Error(`the daemon did not get ready:\n${child.tail}`);
      }
      await sleep(50, signal);
    }
    await sleep(2000, signal);
    const cpuOver = async () => {
      const from = await cpuSeconds(child.pid);
      await sleep(seconds * 1000, signal);
      const to = await cpuSeconds(child.pid);
      if (from === null || to === null) throw new Error("the daemon's CPU time is unknown");
      return ((to - from) * 1000) / seconds;
    };
    const none = await cpuOver();
    const seen = { events: 0 };
    for (let i = 0; i < PAGE_VIEWERS; i++) void view(base, () => child.status === null, seen);
    while (seen.events < PAGE_VIEWERS) await sleep(50, signal);
    const viewed = await cpuOver();
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      seconds,
      cpu_ms_per_s_none: round(none),
      cpu_ms_per_s_viewed: round(viewed),
      page_cpu_ms_per_s: round(viewed - none),
      events_received: seen.events,
    };
  } finally {
    await child.stop();
  }
}

/** What the page's memory costs, measured by bench/page_memory.ts. */
export interface PageMemory {
  readonly entries: number;
  readonly history_samples: number;
  readonly ring_size: number;
  /** The history of every entry, full. */
  readonly history_kib: number;
  /** Every entry's ring full of small dead letters (a 100-byte body, a 60-character error). */
  readonly rings_typical_kib: number;
  /** Every ring full of the largest records kept (a 120-byte preview, a 300-character error). */
  readonly rings_largest_kib: number;
}

/** Runs bench/page_memory.ts in its own process (with gc exposed) and reads its figures. */
export async function measurePageMemory(tools: Tools): Promise<PageMemory> {
  const out = await run("page memory", tools.deno, [
    "run",
    "--no-prompt",
    "--v8-flags=--expose-gc",
    `--config=${join(REPO_DIR, "deno.json")}`,
    join(BENCH_DIR, "page_memory.ts"),
  ], { timeoutMs: 120_000 });
  return JSON.parse(out.trim().split("\n").pop()!);
}
