/**
 * Publish-to-handler latency: messages are published one PUB at a time at a
 * fixed rate, each carrying its publish time in microseconds; the daemon's
 * latency worker (bench/workers/latency.ts) keeps receive − publish time and
 * writes them all out when it stops.
 *
 * @module
 */

import { join } from "node:path";
import type { NsqCluster } from "../tests/helpers/nsq/nsq_cluster.ts";
import { type Child, sleep, spawn } from "./child.ts";
import { BENCH_DIR, REPO_DIR, TMP_DIR, type Tools } from "./env.ts";
import { channelState } from "./nsq.ts";
import { startDaemon } from "./peers.ts";

/** Latency figures of one consumer, in milliseconds. */
export interface LatencyFigures {
  readonly published: number;
  readonly received: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly mean_ms: number;
}

/** What the latency section reports: the daemon's figures, and a reference consumer's. */
export interface LatencyResult extends LatencyFigures {
  readonly rate_per_sec: number;
  readonly seconds: number;
  /** Raw Deno readers: with nsqd's default output buffering, and with 25 ms asked in IDENTIFY. */
  readonly references: (LatencyFigures & { name: string })[];
  readonly note: string;
}

const encoder = new TextEncoder();
const TICK_MS = 5;

/** The `q` quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * A producer connection that PUBs one message per command and reads (and
 * drops) nsqd's answers in the background, answering heartbeats.
 */
async function openPublisher(address: string): Promise<{
  publish(topic: string, body: Uint8Array): Promise<void>;
  close(): void;
}> {
  const colon = address.lastIndexOf(":");
  const conn = await Deno.connect({
    hostname: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
  });
  conn.setNoDelay(true);
  await conn.write(encoder.encode("  V2"));
  const writeAll = async (bytes: Uint8Array) => {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  };
  let writing = Promise.resolve();
  const reading = (async () => {
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await conn.read(chunk);
        if (read === null) return;
        if (new TextDecoder().decode(chunk.subarray(0, read)).includes("_heartbeat_")) {
          writing = writing.then(() => writeAll(encoder.encode("NOP\n")));
        }
      }
    } catch {
      // Closed by close().
    }
  })();
  return {
    publish(topic: string, body: Uint8Array): Promise<void> {
      const head = encoder.encode(`PUB ${topic}\n`);
      const command = new Uint8Array(head.length + 4 + body.length);
      command.set(head);
      new DataView(command.buffer).setInt32(head.length, body.length);
      command.set(body, head.length + 4);
      writing = writing.then(() => writeAll(command));
      return writing;
    },
    close(): void {
      conn.close();
      void reading;
    },
  };
}

/** A consumer that writes its latencies (µs, JSON array) to `out` when stopped. */
type StartConsumer = (topic: string, channel: string, out: string) => Promise<Child>;

/** Publishes at `rate` for `seconds` to a fresh topic read by one consumer; its latencies. */
async function measureOne(options: {
  nsq: NsqCluster;
  name: string;
  start: StartConsumer;
  rate: number;
  seconds: number;
  signal: AbortSignal;
}): Promise<LatencyFigures> {
  const { nsq, rate, seconds, signal } = options;
  const nsqd = nsq.nsqds[0]!;
  const topic = `latency_${options.name.replaceAll(/[^a-zA-Z0-9_-]/g, "_")}`;
  const channel = "handler";
  const out = join(TMP_DIR, `${topic}.json`);
  await Deno.remove(out).catch(() => {});
  await nsq.createChannel(topic, channel);
  const consumer = await options.start(topic, channel, out);
  const total = rate * seconds;
  try {
    const deadline = performance.now() + 60_000;
    for (;;) {
      const state = await channelState(nsqd.httpUrl, topic, channel);
      if (state !== null && state.ready > 0) break;
      if (consumer.status !== null || performance.now() > deadline) {
        throw new Error(`${options.name} did not subscribe:\n${consumer.tail}`);
      }
      await sleep(20, signal);
    }
    const publisher = await openPublisher(nsqd.tcpAddress);
    try {
      const started = performance.now();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
        const pending: Promise<void>[] = [];
        for (; sent < due; sent++) {
          pending.push(
            publisher.publish(topic, encoder.encode(`{"t":${Math.round(nowMicros())}}`)),
          );
        }
        await Promise.all(pending);
        await sleep(TICK_MS, signal);
      }
    } finally {
      publisher.close();
    }
    const drainDeadline = performance.now() + 60_000;
    for (;;) {
      const state = await channelState(nsqd.httpUrl, topic, channel);
      if (state !== null && state.remaining === 0 && state.finished >= total) break;
      if (performance.now() > drainDeadline) {
        throw new Error(`${options.name} finished ${state?.finished ?? 0} of ${total} in time`);
      }
      await sleep(50, signal);
    }
  } finally {
    await consumer.stop();
  }
  const micros = JSON.parse(await Deno.readTextFile(out)) as number[];
  const sorted = micros.map((us) => us / 1000).sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    published: total,
    received: sorted.length,
    p50_ms: round(quantile(sorted, 0.5)),
    p90_ms: round(quantile(sorted, 0.9)),
    p99_ms: round(quantile(sorted, 0.99)),
    max_ms: round(sorted[sorted.length - 1] ?? NaN),
    mean_ms: round(sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length),
  };
}

/**
 * The latency section: the daemon (bench/workers/latency.ts), then the raw
 * Deno reader as a reference for what nsqd and the loopback add by
 * themselves: once with nsqd's default output buffering, as the daemon
 * gets it, and once asking for 25 ms (nsqd's --min-output-buffer-timeout) in IDENTIFY.
 */
export async function measureLatency(options: {
  nsq: NsqCluster;
  tools: Tools;
  rate: number;
  seconds: number;
  maxInFlight: number;
  signal: AbortSignal;
}): Promise<LatencyResult> {
  const { nsq, tools, maxInFlight } = options;
  const nsqdTcp = nsq.nsqds[0]!.tcpAddress;
  const daemon = await measureOne({
    ...options,
    name: "nsqworker",
    start: (topic, channel, out) =>
      startDaemon(tools, {
        label: "latency",
        config: {
          nsq: { nsqd_tcp_addresses: [nsqdTcp] },
          defaults: { max_in_flight: maxInFlight, dead_letter_topic: null },
          log: { level: "warning" },
          http: { listen: null },
          workers: [{ topic, channel, worker: "latency", options: { out } }],
        },
      }),
  });
  const raw = (name: string, extra: string[]) =>
    measureOne({
      ...options,
      name,
      start: (topic, channel, out) =>
        Promise.resolve(spawn(name, tools.deno, [
          "run",
          "--no-prompt",
          "--allow-net=127.0.0.1",
          `--allow-write=${TMP_DIR}`,
          join(BENCH_DIR, "probe_raw_reader.ts"),
          "--nsqd",
          nsqdTcp,
          "--topic",
          topic,
          "--channel",
          channel,
          "--max-in-flight",
          String(maxInFlight),
          "--latency-out",
          out,
          ...extra,
        ], { cwd: REPO_DIR })),
    });
  const references = [
    { name: "raw-deno", ...(await raw("raw-deno", [])) },
    {
      name: "raw-deno output_buffer_timeout=25ms",
      ...(await raw("raw-deno obt25", ["--output-buffer-timeout", "25"])),
    },
  ];
  return {
    rate_per_sec: options.rate,
    seconds: options.seconds,
    ...daemon,
    references,
    note: "nsqd buffers what it sends a consumer for up to output_buffer_timeout (250 ms unless " +
      "the client's IDENTIFY asks otherwise) or 16 KiB: at a moderate rate that buffer, not " +
      "the consumer, sets most of the latency; the raw-deno references show it with nsqd's default " +
      "and with output_buffer_timeout 25 ms (nsqd's minimum by default)",
  };
}
