/**
 * Draws the picture of a trace in docs/tracing.md from a real one: it starts nsqd,
 * Jaeger and the daemon (with OTEL_DENO=true and two chained entries of the
 * test worker `trace_relay`), publishes one message, reads the trace back
 * from Jaeger's query API and writes it as an SVG waterfall, with the trace
 * as Jaeger returned it beside it.
 *
 * ```sh
 * deno run -A tools/trace_picture.ts docs/trace.svg && deno fmt docs/
 * ```
 *
 * @module
 */
import { startDaemon, TempDir } from "../tests/helpers/daemon_process.ts";
import { type JaegerSpan, startJaeger } from "../tests/helpers/jaeger.ts";
import { startNsq } from "../tests/helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../tests/helpers/nsq/unique_topic.ts";

/** A span as the picture needs it. */
export interface PictureSpan {
  readonly spanId: string;
  readonly parentId: string | null;
  readonly name: string;
  readonly kind: string;
  readonly error: boolean;
  /** Microseconds since the epoch. */
  readonly start: number;
  readonly duration: number;
  /** Shown under the name. */
  readonly detail: string;
}

const ROW = 44;
const LEFT = 480;
const WIDTH = 1100;
const TOP = 64;

/** The spans in tree order (each after its parent, siblings by start), with their depth. */
function treeOrder(spans: readonly PictureSpan[]): { span: PictureSpan; depth: number }[] {
  const ids = new Set(spans.map((span) => span.spanId));
  const children = (parent: string | null) =>
    spans
      .filter((span) =>
        (span.parentId !== null && ids.has(span.parentId) ? span.parentId : null) === parent
      )
      .sort((a, b) => a.start - b.start);
  const out: { span: PictureSpan; depth: number }[] = [];
  const visit = (parent: string | null, depth: number) => {
    for (const span of children(parent)) {
      out.push({ span, depth });
      visit(span.spanId, depth + 1);
    }
  };
  visit(null, 0);
  return out;
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * An SVG waterfall of one trace: a row per span, indented under its parent,
 * its bar placed on the trace's time axis.
 */
export function traceSvg(traceId: string, spans: readonly PictureSpan[]): string {
  const rows = treeOrder(spans);
  const start = Math.min(...spans.map((span) => span.start));
  const end = Math.max(...spans.map((span) => span.start + span.duration));
  const total = Math.max(1, end - start);
  const scale = (WIDTH - LEFT - 90) / total;
  const height = TOP + rows.length * ROW + 24;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="26" font-size="16" font-weight="bold">trace ${traceId}</text>`,
    `<text x="16" y="46" fill="#555">${rows.length} spans, ${
      (total / 1000).toFixed(2)
    } ms, as exported by nsqworker (OTEL_DENO=true) and read back from Jaeger; the first span's ` +
    `parent is the publisher's, from the body's traceparent</text>`,
  ];
  rows.forEach(({ span, depth }, i) => {
    const y = TOP + i * ROW;
    const x = LEFT + (span.start - start) * scale;
    const w = Math.max(2, span.duration * scale);
    const color = span.error ? "#d9534f" : span.kind === "consumer" ? "#3b7dd8" : "#2f9e6e";
    if (i % 2 === 1) {
      parts.push(`<rect x="0" y="${y - 4}" width="${WIDTH}" height="${ROW}" fill="#f5f7fa"/>`);
    }
    parts.push(
      `<text x="${16 + depth * 18}" y="${y + 14}" font-weight="bold">${escape(span.name)}</text>`,
      `<text x="${16 + depth * 18}" y="${y + 30}" fill="#666" font-size="11">${
        escape(`${span.kind}${span.error ? ", error" : ""} · ${span.detail}`)
      }</text>`,
      `<rect x="${x.toFixed(1)}" y="${y + 6}" width="${
        w.toFixed(1)
      }" height="18" rx="3" fill="${color}"/>`,
      `<text x="${(x + w + 6).toFixed(1)}" y="${y + 20}" fill="#333" font-size="11">${
        (span.duration / 1000).toFixed(2)
      } ms</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function tag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((tag) => tag.key === key)?.value;
}

/** Jaeger's span as the picture needs it. */
export function pictureSpan(span: JaegerSpan): PictureSpan {
  const details = [
    ["messaging.consumer.group.name", "channel"],
    ["nsqworker.attempts", "attempt"],
    ["nsqworker.outcome", "outcome"],
    ["nsqworker.worker", "worker"],
  ].flatMap(([key, label]) => tag(span, key!) === undefined ? [] : [`${label} ${tag(span, key!)}`]);
  return {
    spanId: span.spanID,
    parentId: span.references.find((ref) => ref.refType === "CHILD_OF")?.spanID ?? null,
    name: span.operationName,
    kind: String(tag(span, "span.kind") ?? "internal"),
    error: tag(span, "otel.status_code") === "ERROR",
    start: span.startTime,
    duration: span.duration,
    detail: details.join(", "),
  };
}

async function main(out: string): Promise<void> {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("orders");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  const entry = (from: string, to: string, channel: string) => ({
    topic: from,
    channel,
    worker: "trace_relay",
    options: { next_topic: to },
  });
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsqd], publish_nsqd_tcp_address: nsqd },
    log: { level: "info", format: "json" },
    http: { listen: null },
    workers: [
      entry(topic, `${topic}.billing`, "fulfil"),
      entry(`${topic}.billing`, `${topic}.mail`, "billing"),
    ],
  }, { env: { ...jaeger.otelEnv, OTEL_SERVICE_NAME: "nsqworker" } });
  await daemon.waitForLines((line) => line.includes("connected to nsqd"), 2);
  const traceId = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await nsq.publish(
    topic,
    JSON.stringify({ n: 1, traceparent: `00-${traceId}-00f067aa0ba902b7-01` }),
  );
  await nsq.readTopic(`${topic}.mail`, 1, { channel: "picture" });
  daemon.signal("SIGTERM");
  await daemon.status;
  const spans = await jaeger.waitForSpans(traceId, (spans) => spans.length >= 4);
  await Deno.writeTextFile(out, traceSvg(traceId, spans.map(pictureSpan)));
  await Deno.writeTextFile(
    out.replace(/\.svg$/, "") + ".json",
    JSON.stringify(spans, null, 2) + "\n",
  );
  console.log(`trace ${traceId}: ${spans.length} spans drawn into ${out}`);
}

if (import.meta.main) {
  const out = Deno.args[0];
  if (out === undefined || !out.endsWith(".svg")) {
    console.error("usage: deno run -A tools/trace_picture.ts OUT.svg");
    Deno.exit(2);
  }
  await main(out);
}
