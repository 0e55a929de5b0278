/**
 * One drain: preload a fresh channel, start a peer, follow the channel's
 * remaining count on nsqd's `/stats`, and take the rate between 90 % and
 * 10 % remaining (start-up and the tail are left out), interpolating the
 * moments the count crossed those marks.
 *
 * @module
 */

import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { type Child, sleep } from "./child.ts";
import { cpuSeconds } from "./cpu.ts";
import { channelState, deleteTopic, preload } from "./nsq.ts";
import type { Peer, PeerTarget } from "./peers.ts";

const POLL_MS = 10;

/** One sample of a drain. */
export interface DrainSample {
  /** Since the peer was started. */
  readonly t_ms: number;
  readonly remaining: number;
}

/** What one drain measured. */
export interface DrainResult {
  readonly msgs_per_sec: number;
  /** From the peer's start until 90 % remained: start-up, connection, first RDY. */
  readonly startup_ms: number;
  /** How long the measured window (90 % → 10 %, or less when capped) lasted. */
  readonly window_ms: number;
  /** The share measured: 0.8 unless the drain hit its time cap. */
  readonly measured_fraction: number;
  readonly capped: boolean;
  /**
   * The peer's CPU seconds (user + system, its whole process tree) per
   * million messages, between the first sample at 90 % remaining or below
   * and the last; null when it could not be read.
   */
  readonly cpu_s_per_million: number | null;
}

/** The peer's CPU time read at one sample. */
interface CpuMark {
  readonly cpu_s: number;
  readonly remaining: number;
}

async function cpuMark(child: Child, remaining: number): Promise<CpuMark | null> {
  const cpu = await cpuSeconds(child.pid);
  return cpu === null ? null : { cpu_s: cpu, remaining };
}

function cpuPerMillion(from: CpuMark | null, to: CpuMark | null): number | null {
  if (from === null || to === null || to.remaining >= from.remaining) return null;
  return ((to.cpu_s - from.cpu_s) / (from.remaining - to.remaining)) * 1e6;
}

/** Options of {@linkcode drain}. */
export interface DrainOptions {
  readonly nsq: NsqCluster;
  readonly peer: Peer;
  readonly bodies: readonly Uint8Array[];
  readonly prefix: string;
  readonly maxInFlight: number;
  readonly capMs: number;
  readonly signal: AbortSignal;
  readonly cpuProfDir?: string;
  /** Called with each sample (the memory section samples RSS alongside). */
  readonly onSample?: (sample: DrainSample, child: Child) => void;
  /** Drain to 0 instead of stopping at 10 % remaining. */
  readonly toEmpty?: boolean;
}

/** The time `remaining` fell to `level`, interpolated between the samples around it. */
function crossing(samples: readonly DrainSample[], level: number): number | null {
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1]!;
    const after = samples[i]!;
    if (after.remaining > level) continue;
    if (before.remaining <= level) return before.t_ms;
    const share = (before.remaining - level) / (before.remaining - after.remaining);
    return before.t_ms + share * (after.t_ms - before.t_ms);
  }
  return null;
}

/** Runs one drain with `peer` and stops it; throws when the peer failed. */
export async function drain(
  options: DrainOptions,
): Promise<DrainResult & { samples: DrainSample[] }> {
  const { nsq, peer, bodies, signal } = options;
  const nsqd = nsq.nsqds[0]!;
  const topic = peer.topic(options.prefix);
  const total = bodies.length;
  await preload(nsq, topic, peer.channel, bodies, signal);
  const target: PeerTarget = {
    topic,
    channel: peer.channel,
    nsqdTcp: nsqd.tcpAddress,
    lookupdHttp: nsq.lookupd!.httpUrl,
    maxInFlight: options.maxInFlight,
    runId: options.prefix,
    ...(options.cpuProfDir ? { cpuProfDir: options.cpuProfDir } : {}),
  };
  const samples: DrainSample[] = [];
  const started = performance.now();
  const child = await peer.start(target);
  // Read at the edges of the measured window, so that start-up is left out.
  let cpuFrom: CpuMark | null | undefined;
  let cpuTo: CpuMark | null = null;
  try {
    const stopAt = options.toEmpty ? 0 : Math.floor(total * 0.1);
    for (;;) {
      const state = await channelState(nsqd.httpUrl, topic, peer.channel);
      const sample = { t_ms: performance.now() - started, remaining: state?.remaining ?? total };
      samples.push(sample);
      options.onSample?.(sample, child);
      if (cpuFrom === undefined && sample.remaining <= total * 0.9) {
        cpuFrom = await cpuMark(child, sample.remaining);
      }
      if (sample.remaining <= stopAt) {
        cpuTo = await cpuMark(child, sample.remaining);
        break;
      }
      if (child.status !== null) {
        throw new Error(
          `${peer.name} exited (code ${child.status.code}) with ${sample.remaining} of ${total} ` +
            `messages left:\n${child.tail}`,
        );
      }
      if (sample.t_ms > options.capMs) {
        cpuTo = await cpuMark(child, sample.remaining);
        break;
      }
      await sleep(POLL_MS, signal);
    }
  } finally {
    await child.stop();
    await deleteTopic(nsqd.httpUrl, topic);
  }
  const t90 = crossing(samples, total * 0.9);
  const last = samples[samples.length - 1]!;
  const low = Math.max(total * 0.1, last.remaining);
  const tLow = crossing(samples, low);
  if (t90 === null || tLow === null || tLow <= t90) {
    throw new Error(
      `${peer.name} finished fewer than 10 % of ${total} messages in ${Math.round(last.t_ms)} ms`,
    );
  }
  const measured = total * 0.9 - low;
  return {
    msgs_per_sec: measured / ((tLow - t90) / 1000),
    startup_ms: Math.round(t90),
    window_ms: Math.round(tLow - t90),
    measured_fraction: measured / total,
    capped: last.remaining > total * 0.1 && !options.toEmpty,
    cpu_s_per_million: cpuPerMillion(cpuFrom ?? null, cpuTo),
    samples,
  };
}
