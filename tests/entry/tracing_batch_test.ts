/**
 * Tracing of `handleBatch` end to end (docs/batch.md, docs/tracing.md): `nsqworker run` as a
 * process with Deno's OpenTelemetry on, exporting to a real Jaeger, against
 * a real nsqd. One span per batch, linked to each item's parent context;
 * what the batch publishes is its child; a failing batch is an error.
 */
import assert from "node:assert/strict";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { parentOf, startJaeger, tag, upstreamParent } from "../helpers/jaeger.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";

const CHANNEL = "bulk";
const decoder = new TextDecoder();

/** The trace ids the worker's log lines carry, one per `handleBatch` call, by the items' `n`. */
function batchTraceIds(daemon: CliProcess): Map<string, string> {
  const ids = new Map<string, string>();
  for (const line of daemon.stdout) {
    try {
      const record = JSON.parse(line);
      if (record?.msg === "trace_batch_relay: handling") {
        ids.set(String([...record.ns].sort()), String(record.trace_id));
      }
    } catch {
      // Not a JSON log line.
    }
  }
  return ids;
}

Deno.test("tracing on: one span per batch, linked to each item's parent; its publish is its child; a failing batch is an error", async () => {
  await using jaeger = await startJaeger();
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("traced_batch");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsqd], publish_nsqd_tcp_address: nsqd },
    log: { level: "info", format: "json" },
    http: { listen: null },
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "trace_batch_relay",
      max_attempts: 1,
      max_in_flight: 3,
      batch: { size: 3, wait: "300ms" },
      options: { next_topic: `${topic}.next` },
    }],
  }, { env: jaeger.otelEnv });
  await daemon.waitForLine((line) => line.includes("connected to nsqd"));

  // A full batch of three, each item from a trace of its own.
  const parents = [upstreamParent(), upstreamParent(), upstreamParent()];
  await nsq.publishMany(
    topic,
    parents.map((parent, n) => JSON.stringify({ n, traceparent: parent.traceparent })),
  );
  const followUps = (await nsq.readTopic(`${topic}.next`, 3, { channel: "check" }))
    .map((bytes) => JSON.parse(decoder.decode(bytes)));
  // Then a failing batch of two, handed over after `wait`.
  const failing = [upstreamParent(), upstreamParent()];
  await nsq.publishMany(topic, [
    JSON.stringify({ n: 10, traceparent: failing[0]!.traceparent }),
    JSON.stringify({ n: 11, fail: true, traceparent: failing[1]!.traceparent }),
  ]);
  await nsq.readTopic(`${topic}.dead`, 2, { channel: "check" });
  await daemon.waitForLines((line) => line.includes('"trace_batch_relay: handling"'), 2);
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);

  const ids = batchTraceIds(daemon);
  const okTrace = ids.get("0,1,2");
  assert.match(String(okTrace), /^[0-9a-f]{32}$/, `batches seen: ${[...ids.keys()]}`);
  assert.ok(!parents.some((parent) => parent.traceId === okTrace), "the batch is its own root");

  // The batch span: a root, with a link (FOLLOWS_FROM) to each item's parent.
  const okSpans = await jaeger.waitForSpans(okTrace!, (spans) => spans.length >= 2);
  const batch = okSpans.find((span) => span.operationName === `process ${topic} batch`);
  assert.ok(batch, `no batch span among ${okSpans.map((s) => s.operationName)}`);
  assert.equal(parentOf(batch), undefined);
  assert.equal(tag(batch, "span.kind"), "consumer");
  assert.equal(tag(batch, "messaging.batch.message_count"), 3);
  assert.equal(tag(batch, "messaging.destination.name"), topic);
  assert.equal(tag(batch, "messaging.consumer.group.name"), CHANNEL);
  assert.equal(tag(batch, "nsqworker.worker"), "trace_batch_relay");
  assert.equal(tag(batch, "nsqworker.batch.result"), "returned");
  assert.notEqual(tag(batch, "otel.status_code"), "ERROR");
  const links = batch.references.filter((ref) => ref.refType === "FOLLOWS_FROM")
    .map((ref) => `${ref.traceID}-${ref.spanID}`).sort();
  assert.deepEqual(links, parents.map((parent) => `${parent.traceId}-${parent.spanId}`).sort());

  // Its publishMany is its child, and the follow-ups carry that span on.
  const send = okSpans.find((span) => span.operationName === `publish ${topic}.next`);
  assert.ok(send, `no publish span among ${okSpans.map((s) => s.operationName)}`);
  assert.equal(parentOf(send), batch.spanID);
  for (const followUp of followUps) {
    assert.equal(followUp.traceparent, `00-${okTrace}-${send.spanID}-01`);
  }

  // Each item still has its delivery span in its own trace, with its outcome.
  const item = await jaeger.waitForSpans(parents[1]!.traceId, (spans) => spans.length >= 1);
  const delivery = item.find((span) => span.operationName === `process ${topic}`);
  assert.ok(delivery, `no delivery span among ${item.map((s) => s.operationName)}`);
  assert.equal(parentOf(delivery), parents[1]!.spanId);
  assert.equal(tag(delivery, "nsqworker.outcome"), "finish");

  // The failing batch: error status and the exception, linked to both parents.
  const failedTrace = ids.get("10,11");
  assert.match(String(failedTrace), /^[0-9a-f]{32}$/, `batches seen: ${[...ids.keys()]}`);
  const failedSpans = await jaeger.waitForSpans(failedTrace!, (spans) => spans.length >= 1);
  const failed = failedSpans.find((span) => span.operationName === `process ${topic} batch`);
  assert.ok(failed);
  assert.equal(tag(failed, "otel.status_code"), "ERROR");
  assert.equal(tag(failed, "nsqworker.batch.result"), "threw");
  assert.equal(tag(failed, "messaging.batch.message_count"), 2);
  const exception = failed.logs.find((log) =>
    log.fields.some((field) => field.key === "event" && field.value === "exception")
  );
  assert.ok(exception, "no exception event on the failed batch span");
  const fields = Object.fromEntries(exception.fields.map((field) => [field.key, field.value]));
  assert.equal(fields["exception.type"], "TypeError");
  assert.match(String(fields["exception.message"]), /refusing 10,11 on purpose/);
  assert.deepEqual(
    failed.references.filter((ref) => ref.refType === "FOLLOWS_FROM").map((ref) => ref.spanID)
      .sort(),
    failing.map((parent) => parent.spanId).sort(),
  );

  console.log(`batch trace ids in jaeger: ${okTrace} (returned), ${failedTrace} (threw)`);
});
