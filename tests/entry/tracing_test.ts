/**
 * Tracing end to end: `nsqworker run` as a process with Deno's OpenTelemetry
 * switched on, exporting to a real Jaeger (tests/helpers/jaeger.ts), against
 * a real nsqd; the spans are read back through Jaeger's query API.
 */
import assert from "node:assert/strict";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { parentOf, startJaeger, tag, upstreamParent } from "../helpers/jaeger.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const CHANNEL = "relay";
const decoder = new TextDecoder();

function relayConfig(nsq: NsqCluster, topic: string, extra: Record<string, unknown> = {}) {
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  return {
    nsq: { nsqd_tcp_addresses: [nsqd], publish_nsqd_tcp_address: nsqd },
    log: { level: "info", format: "json" },
    http: { listen: null },
    shutdown_timeout: "10s",
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "trace_relay",
      max_attempts: 1,
      options: { next_topic: `${topic}.next` },
    }],
    ...extra,
  };
}

function logRecords(daemon: CliProcess, msg: string): Record<string, unknown>[] {
  return daemon.stdout.flatMap((line) => {
    try {
      const record = JSON.parse(line);
      return record?.msg === msg ? [record] : [];
    } catch {
      return [];
    }
  });
}

async function stop(daemon: CliProcess): Promise<void> {
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
}

Deno.test("tracing on: the delivery, its follow-up and its dead letter join the publisher's trace in Jaeger", async () => {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("traced");
  await using daemon = await startDaemon(
    dir,
    relayConfig(nsq, topic, { http: { listen: "127.0.0.1:0" } }),
    { env: jaeger.otelEnv },
  );
  const listening = JSON.parse(
    await daemon.waitForLine((line) => line.includes('"msg":"http listening"')),
  );
  await daemon.waitForLine((line) => line.includes("connected to nsqd"));

  const ok = upstreamParent();
  const failing = upstreamParent();
  await nsq.publishMany(topic, [
    JSON.stringify({ n: 1, traceparent: ok.traceparent }),
    JSON.stringify({ n: 2, fail: true, traceparent: failing.traceparent }),
    JSON.stringify({ n: 3, traceparent: "not-a-traceparent" }),
  ]);
  const [followUp] = await nsq.readTopic(`${topic}.next`, 1, { channel: "check" });
  const [deadLetter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
  await daemon.waitForLines((line) => line.includes('"trace_relay: handling"'), 3);

  // The invalid traceparent was counted and the message handled all the same.
  await waitFor(async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    return stats.entries[0].invalid_traceparents === 1 && stats.entries[0].outcomes.finish === 2;
  }, { message: "the invalid traceparent counted and message 3 finished" });
  await stop(daemon);

  // The successful delivery: its span is the upstream span's child, and the
  // follow-up's PRODUCER span is the delivery span's child.
  const okSpans = await jaeger.waitForSpans(ok.traceId, (spans) => spans.length >= 2);
  const process = okSpans.find((span) => span.operationName === `process ${topic}`);
  assert.ok(process, `no process span among ${okSpans.map((s) => s.operationName)}`);
  assert.equal(parentOf(process), ok.spanId);
  assert.equal(tag(process, "span.kind"), "consumer");
  assert.equal(tag(process, "messaging.system"), "nsq");
  assert.equal(tag(process, "messaging.destination.name"), topic);
  assert.equal(tag(process, "messaging.consumer.group.name"), CHANNEL);
  assert.equal(tag(process, "messaging.operation.type"), "process");
  assert.match(String(tag(process, "messaging.message.id")), /^[0-9a-f]{16}$/);
  assert.equal(tag(process, "nsqworker.attempts"), 1);
  assert.equal(tag(process, "nsqworker.outcome"), "finish");
  assert.equal(tag(process, "nsqworker.worker"), "trace_relay");
  assert.notEqual(tag(process, "otel.status_code"), "ERROR");

  const send = okSpans.find((span) => span.operationName === `publish ${topic}.next`);
  assert.ok(send, `no publish span among ${okSpans.map((s) => s.operationName)}`);
  assert.equal(parentOf(send), process.spanID);
  assert.equal(tag(send, "span.kind"), "producer");
  const relayed = JSON.parse(decoder.decode(followUp));
  assert.deepEqual(relayed, { from: 1, traceparent: `00-${ok.traceId}-${send.spanID}-01` });

  // Log records written during the delivery carry its ids.
  const handled = logRecords(daemon, "trace_relay: handling");
  const okLog = handled.find((record) => record.n === 1);
  assert.equal(okLog?.trace_id, ok.traceId);
  assert.equal(okLog?.span_id, process.spanID);

  // The failing delivery: error status and an exception event; its dead
  // letter carries the trace on, from a PRODUCER span under the delivery's.
  const failedSpans = await jaeger.waitForSpans(failing.traceId, (spans) => spans.length >= 2);
  const failed = failedSpans.find((span) => span.operationName === `process ${topic}`);
  assert.ok(failed);
  assert.equal(parentOf(failed), failing.spanId);
  assert.equal(tag(failed, "otel.status_code"), "ERROR");
  assert.equal(tag(failed, "nsqworker.outcome"), "dead");
  const exception = failed.logs.find((log) =>
    log.fields.some((field) => field.key === "event" && field.value === "exception")
  );
  assert.ok(exception, "no exception event on the failed span");
  const fields = Object.fromEntries(exception.fields.map((field) => [field.key, field.value]));
  assert.equal(fields["exception.type"], "TypeError");
  assert.match(String(fields["exception.message"]), /refusing 2 on purpose/);

  const envelope = JSON.parse(decoder.decode(deadLetter));
  const deadSend = failedSpans.find((span) => span.operationName === `publish ${topic}.dead`);
  assert.ok(deadSend, `no dead letter span among ${failedSpans.map((s) => s.operationName)}`);
  assert.equal(parentOf(deadSend), failed.spanID);
  assert.equal(envelope.traceparent, `00-${failing.traceId}-${deadSend.spanID}-01`);

  // The message with an invalid traceparent started a trace of its own.
  const loneLog = handled.find((record) => record.n === 3);
  assert.match(String(loneLog?.trace_id), /^[0-9a-f]{32}$/);
  assert.ok(![ok.traceId, failing.traceId].includes(String(loneLog?.trace_id)));
  const lone = await jaeger.waitForSpans(String(loneLog?.trace_id), (spans) => spans.length >= 2);
  assert.equal(
    parentOf(lone.find((span) => span.operationName === `process ${topic}`)!),
    undefined,
  );

  console.log(
    `trace ids in jaeger: ${ok.traceId} (finish), ${failing.traceId} (dead), ${loneLog?.trace_id} (own root)`,
  );
});

Deno.test("tracing off (OTEL_DENO unset): nothing is exported, nothing injected, no ids in the logs", async () => {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("untraced");
  const parent = upstreamParent();
  const { OTEL_DENO: _, ...exporterOnly } = jaeger.otelEnv;
  await using off = await startDaemon(dir, relayConfig(nsq, topic), {
    env: { ...exporterOnly, OTEL_SERVICE_NAME: "nsqworker-off" },
  });
  await off.waitForLine((line) => line.includes("connected to nsqd"));
  await nsq.publish(topic, JSON.stringify({ n: 1, traceparent: parent.traceparent }));
  const [followUp] = await nsq.readTopic(`${topic}.next`, 1, { channel: "check" });
  await stop(off);

  assert.deepEqual(JSON.parse(decoder.decode(followUp)), { from: 1 });
  const handled = logRecords(off, "trace_relay: handling");
  assert.equal(handled.length, 1);
  assert.ok(!("trace_id" in handled[0]!) && !("span_id" in handled[0]!));

  // The control: the same daemon with OTEL_DENO=true, started after the
  // first one exited (which flushes any export), does reach Jaeger. Once its
  // spans are there, anything the first one sent would be too.
  const control = upstreamParent();
  await using on = await startDaemon(dir, relayConfig(nsq, topic), { env: jaeger.otelEnv });
  await on.waitForLine((line) => line.includes("connected to nsqd"));
  await nsq.publish(topic, JSON.stringify({ n: 2, traceparent: control.traceparent }));
  await nsq.readTopic(`${topic}.next`, 1, { channel: "check" });
  await stop(on);
  await jaeger.waitForSpans(control.traceId, (spans) => spans.length >= 2);

  assert.deepEqual(await jaeger.spans(parent.traceId), []);
  assert.deepEqual(await jaeger.services(), [jaeger.otelEnv.OTEL_SERVICE_NAME]);
});
