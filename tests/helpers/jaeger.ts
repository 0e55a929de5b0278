/**
 * Test harness that runs a real Jaeger v2 all-in-one (built by
 * tools/jaeger_bin.ts) with in-memory storage, its OTLP/HTTP receiver and
 * query API on free loopback ports, and reads traces back through the query
 * API's JSON.
 *
 * ```ts
 * Deno.test("spans arrive", async () => {
 *   await using jaeger = await startJaeger();
 *   // ... run the daemon with OTEL_DENO=true and jaeger.otelEnv ...
 *   const spans = await jaeger.waitForSpans(traceId, (spans) => spans.length >= 2);
 * });
 * ```
 *
 * @module
 */

import { jaegerBin } from "../../tools/jaeger_bin.ts";
import { trackChild } from "./children.ts";
import { freePorts } from "./free_port.ts";
import { waitFor } from "./wait_for.ts";

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 20_000;
const OUTPUT_TAIL_LINES = 30;

/** A tag of a span, as the query API gives it. */
export interface JaegerTag {
  readonly key: string;
  readonly type: string;
  readonly value: unknown;
}

/** A span, as the query API (`/api/traces/{id}`) gives it. */
export interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly references: readonly { refType: string; traceID: string; spanID: string }[];
  readonly tags: readonly JaegerTag[];
  readonly logs: readonly { timestamp: number; fields: readonly JaegerTag[] }[];
  readonly processID: string;
  readonly startTime: number;
  readonly duration: number;
}

/** A running Jaeger of one test. */
export interface Jaeger extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`: the OTLP/HTTP receiver. */
  readonly otlpEndpoint: string;
  /** `http://127.0.0.1:PORT`: the query API and UI. */
  readonly queryUrl: string;
  /** The environment that makes a Deno process export its traces here. */
  readonly otelEnv: Readonly<Record<string, string>>;
  /** The spans of a trace; none when Jaeger has not seen it. */
  spans(traceId: string): Promise<JaegerSpan[]>;
  /** Polls {@linkcode spans} until `done` holds for them. */
  waitForSpans(
    traceId: string,
    done: (spans: JaegerSpan[]) => boolean,
    timeoutMs?: number,
  ): Promise<JaegerSpan[]>;
  /** The services Jaeger has received spans from. */
  services(): Promise<string[]>;
  /** How many of `service`'s traces a search returns, at most `limit`. */
  traceCount(service: string, limit: number): Promise<number>;
  close(): Promise<void>;
}

/** Starts Jaeger and resolves once its query API answers. */
export async function startJaeger(): Promise<Jaeger> {
  const bin = await jaegerBin();
  const dir = await Deno.makeTempDir({ prefix: "nsqworker_jaeger_" });
  const [otlpPort, queryPort, grpcPort] = freePorts(3) as [number, number, number];
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(config, jaegerConfig(otlpPort, queryPort, grpcPort));
  const child = new Deno.Command(bin, {
    args: ["--config", config],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  trackChild(child);
  const output: string[] = [];
  const drained = Promise.all([collect(child.stdout, output), collect(child.stderr, output)]);
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  const queryUrl = `http://${HOST}:${queryPort}`;
  const otlpEndpoint = `http://${HOST}:${otlpPort}`;

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      if (!exited) {
        try {
          // Its storage is memory, nothing to save; on SIGTERM it takes 10 s to stop.
          child.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }
      await status;
      await drained;
      await Deno.remove(dir, { recursive: true });
    })();

  try {
    await waitFor(async () => {
      if (exited) {
        await drained;
        throw new Error(`jaeger exited during start-up:\n${output.join("\n")}`);
      }
      return await answers(`${queryUrl}/api/services`);
    }, { timeoutMs: START_TIMEOUT_MS, message: `jaeger's query API at ${queryUrl}` });
  } catch (error) {
    await close();
    throw error;
  }

  const spans = async (traceId: string): Promise<JaegerSpan[]> => {
    const response = await fetch(`${queryUrl}/api/traces/${traceId}`);
    if (response.status === 404) {
      await response.body?.cancel();
      return [];
    }
    if (!response.ok) {
      throw new Error(
        `jaeger answered ${response.status} for trace ${traceId}: ${await response.text()}`,
      );
    }
    const json = await response.json() as { data: { spans: JaegerSpan[] }[] };
    return json.data.flatMap((trace) => trace.spans);
  };

  return {
    otlpEndpoint,
    queryUrl,
    otelEnv: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_SERVICE_NAME: "nsqworker-test",
    },
    spans,
    async waitForSpans(traceId, done, timeoutMs = 15_000) {
      let last: JaegerSpan[] = [];
      try {
        await waitFor(async () => done(last = await spans(traceId)), {
          timeoutMs,
          intervalMs: 100,
          message: `the spans of trace ${traceId} in jaeger`,
        });
      } catch (error) {
        throw new Error(
          `${(error as Error).message}; it has ${last.length}: ${
            last.map((span) => span.operationName).join(", ")
          }`,
        );
      }
      return last;
    },
    async services() {
      const response = await fetch(`${queryUrl}/api/services`);
      const json = await response.json() as { data: string[] | null };
      return json.data ?? [];
    },
    async traceCount(service, limit) {
      const url = `${queryUrl}/api/traces?service=${encodeURIComponent(service)}&limit=${limit}`;
      const json = await (await fetch(url)).json() as { data: unknown[] | null };
      return json.data?.length ?? 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Jaeger's all-in-one configuration cut down to what the tests use: the
 * OTLP/HTTP receiver, memory storage and the query API, all on loopback
 * ports of our choosing, and its own metrics off (they would take port 8888).
 */
function jaegerConfig(otlpPort: number, queryPort: number, grpcPort: number): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn

extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "${HOST}:${queryPort}"
    grpc:
      endpoint: "${HOST}:${grpcPort}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000

receivers:
  otlp:
    protocols:
      http:
        endpoint: "${HOST}:${otlpPort}"

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

async function collect(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
  const decoder = new TextDecoderStream();
  let rest = "";
  for await (const chunk of stream.pipeThrough(decoder)) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      if (lines.length > OUTPUT_TAIL_LINES) lines.shift();
    }
  }
  if (rest !== "") lines.push(rest);
}

/** A fresh random trace id and span id, as a caller upstream would have them. */
export function upstreamParent(): { traceId: string; spanId: string; traceparent: string } {
  const hex = (bytes: number) =>
    Array.from(
      crypto.getRandomValues(new Uint8Array(bytes)),
      (b) => b.toString(16).padStart(2, "0"),
    )
      .join("");
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** The value of a span's tag `key`. */
export function tag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((tag) => tag.key === key)?.value;
}

/** The span id of a span's parent; undefined for a root. */
export function parentOf(span: JaegerSpan): string | undefined {
  return span.references.find((ref) => ref.refType === "CHILD_OF")?.spanID;
}
