/**
 * Sampling end to end: `nsqworker run` as a process with Deno's
 * OpenTelemetry on and `OTEL_TRACES_SAMPLER` set, exporting to a real
 * Jaeger, against a real nsqd. A delivery left out starts no span and hands
 * an unsampled `traceparent` on; a sampled one is traced as before.
 */
import assert from "node:assert/strict";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { type Jaeger, parentOf, startJaeger, upstreamParent } from "../helpers/jaeger.ts";
import { type NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { traceIdRatioSampled } from "../../src/observe/trace_sampler.ts";

const decoder = new TextDecoder();
const UNSAMPLED = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/;

function relayConfig(nsq: NsqCluster, topic: string) {
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  return {
    nsq: { nsqd_tcp_addresses: [nsqd], publish_nsqd_tcp_address: nsqd },
    log: { level: "info", format: "json" },
    http: { listen: null },
    workers: [{
      topic,
      channel: "relay",
      worker: "trace_relay",
      max_attempts: 1,
      options: { next_topic: `${topic}.next` },
    }],
  };
}

/** The trace ids of the `trace_relay: handling` lines, by the body's `n` (null: none). */
function loggedTraceIds(daemon: CliProcess): Map<number, string | null> {
  const ids = new Map<number, string | null>();
  for (const line of daemon.stdout) {
    try {
      const record = JSON.parse(line);
      if (record?.msg === "trace_relay: handling") ids.set(record.n, record.trace_id ?? null);
    } catch {
      // Not a JSON log line.
    }
  }
  return ids;
}

/** Runs the relay under `sampler` on `bodies`; returns its follow-ups by `from`, its dead letters and itself. */
async function relay(
  jaeger: Jaeger,
  nsq: NsqCluster,
  dir: TempDir,
  env: Record<string, string>,
  bodies: readonly Record<string, unknown>[],
) {
  const topic = uniqueTopic("sampled");
  await using daemon = await startDaemon(dir, relayConfig(nsq, topic), {
    env: { ...jaeger.otelEnv, ...env },
  });
  await daemon.waitForLine((line) => line.includes("connected to nsqd"));
  await nsq.publishMany(topic, bodies.map((body) => JSON.stringify(body)));
  const failing = bodies.filter((body) => body.fail === true).length;
  const followUps = await nsq.readTopic(`${topic}.next`, bodies.length - failing, {
    channel: "check",
  });
  const deadLetters = failing === 0
    ? []
    : await nsq.readTopic(`${topic}.dead`, failing, { channel: "check" });
  await daemon.waitForLines((line) => line.includes('"trace_relay: handling"'), bodies.length);
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  const byFrom = new Map<number, string>();
  for (const bytes of followUps) {
    const followUp = JSON.parse(decoder.decode(bytes));
    byFrom.set(followUp.from, followUp.traceparent);
  }
  return {
    topic,
    traceparents: byFrom,
    deadLetters: deadLetters.map((bytes) => JSON.parse(decoder.decode(bytes))),
    logged: loggedTraceIds(daemon),
  };
}

Deno.test("parentbased_traceidratio at 0: only the sampled parent's delivery is traced; the others hand an unsampled traceparent on", async () => {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const unsampled = upstreamParent();
  const unsampledParent = unsampled.traceparent.replace(/-01$/, "-00");
  const dead = upstreamParent();
  const sampled = upstreamParent();
  const run = await relay(jaeger, nsq, dir, {
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0",
  }, [
    { n: 1 },
    { n: 2, traceparent: unsampledParent },
    { n: 3, traceparent: sampled.traceparent },
    { n: 4, fail: true, traceparent: dead.traceparent.replace(/-01$/, "-00") },
  ]);

  // The sampled parent's delivery and its follow-up's PRODUCER span are in Jaeger.
  const spans = await jaeger.waitForSpans(sampled.traceId, (spans) => spans.length >= 2);
  const process = spans.find((span) => span.operationName === `process ${run.topic}`);
  assert.ok(process, `no process span among ${spans.map((s) => s.operationName)}`);
  assert.equal(parentOf(process), sampled.spanId);
  const send = spans.find((span) => span.operationName === `publish ${run.topic}.next`);
  assert.ok(send, `no publish span among ${spans.map((s) => s.operationName)}`);
  assert.equal(run.traceparents.get(3), `00-${sampled.traceId}-${send.spanID}-01`);
  assert.equal(run.logged.get(3), sampled.traceId);

  // The unsampled parent is handed on as it came: no span of this service stands between.
  assert.equal(run.traceparents.get(2), unsampledParent);
  assert.equal(run.deadLetters[0]?.traceparent, dead.traceparent.replace(/-01$/, "-00"));
  // The root starts a trace of its own, unsampled.
  const root = UNSAMPLED.exec(String(run.traceparents.get(1)));
  assert.ok(root, `follow-up of the root carries ${run.traceparents.get(1)}`);
  assert.ok(![unsampled.traceId, sampled.traceId, dead.traceId].includes(root[1]!));
  // No span was active while the left-out messages were handled.
  assert.equal(run.logged.get(1), null);
  assert.equal(run.logged.get(2), null);
  assert.equal(run.logged.get(4), null);

  // The daemon has exited, so everything it exported has arrived with the sampled trace.
  for (const traceId of [root[1]!, unsampled.traceId, dead.traceId]) {
    assert.deepEqual(await jaeger.spans(traceId), [], traceId);
  }
  assert.equal(await jaeger.traceCount(jaeger.otelEnv.OTEL_SERVICE_NAME!, 10), 1);
});

Deno.test("traceidratio: the trace id decides, whatever the parent's flag, as Deno's sampler does", async () => {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  // At 0.5 a trace is sampled when its last 8 bytes are below 2^63.
  const withLow = (low: string) => {
    const parent = upstreamParent();
    const traceId = parent.traceId.slice(0, 16) + low;
    return { traceId, spanId: parent.spanId };
  };
  const kept = withLow("0000000000000001");
  const dropped = withLow("ffffffffffffffff");
  const roots = [10, 11, 12, 13, 14, 15];
  const run = await relay(jaeger, nsq, dir, {
    OTEL_TRACES_SAMPLER: "traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.5",
  }, [
    { n: 1, traceparent: `00-${kept.traceId}-${kept.spanId}-00` },
    { n: 2, traceparent: `00-${dropped.traceId}-${dropped.spanId}-01` },
    ...roots.map((n) => ({ n })),
  ]);

  // An unsampled flag does not stop a trace id the ratio keeps.
  const spans = await jaeger.waitForSpans(kept.traceId, (spans) => spans.length >= 2);
  const process = spans.find((span) => span.operationName === `process ${run.topic}`);
  assert.ok(process, `no process span among ${spans.map((s) => s.operationName)}`);
  assert.equal(parentOf(process), kept.spanId);
  assert.match(String(run.traceparents.get(1)), new RegExp(`^00-${kept.traceId}-[0-9a-f]{16}-01$`));

  // A sampled flag does not save one it drops: the parent goes on, unsampled.
  assert.equal(run.traceparents.get(2), `00-${dropped.traceId}-${dropped.spanId}-00`);
  assert.equal(run.logged.get(2), null);

  // Roots: each new trace is sampled by its id, and a sampled one is exported.
  for (const n of roots) {
    const traceparent = String(run.traceparents.get(n));
    const [, traceId, , flags] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/.exec(traceparent) ??
      assert.fail(`follow-up ${n} carries ${traceparent}`);
    assert.equal(flags === "01", traceIdRatioSampled(traceId!, 0.5), traceparent);
    if (flags === "01") {
      assert.equal(run.logged.get(n), traceId);
      const root = await jaeger.waitForSpans(traceId!, (spans) => spans.length >= 2);
      assert.ok(root.some((span) => span.operationName === `process ${run.topic}`));
    } else {
      assert.equal(run.logged.get(n), null);
    }
  }
  assert.deepEqual(await jaeger.spans(dropped.traceId), []);
});
