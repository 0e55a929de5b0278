/**
 * Tracing off (the default, `OTEL_DENO` unset) costs nothing: with a
 * counting tracer provider and context manager registered in OpenTelemetry's
 * global API, a daemon that handles, publishes, fails and dead-letters
 * messages never calls either.
 */
import assert from "node:assert/strict";
import {
  type Context,
  context,
  type ContextManager,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  type Span,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { TRACING_ON } from "../../src/observe/tracing_switch.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";

/** Records every call OpenTelemetry's global API passes on to it. */
function countingProviders(calls: string[]): { tracer: TracerProvider; context: ContextManager } {
  const span = (): Span => {
    calls.push("startSpan");
    return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
  };
  const tracer = {
    startSpan: span,
    startActiveSpan: (...args: unknown[]) => {
      calls.push("startActiveSpan");
      return (args.at(-1) as (span: Span) => unknown)(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
    },
  } as unknown as Tracer;
  return {
    tracer: {
      getTracer(name) {
        calls.push(`getTracer ${name}`);
        return tracer;
      },
    },
    context: {
      active(): Context {
        calls.push("context.active");
        return ROOT_CONTEXT;
      },
      with(_context, fn, thisArg, ...args) {
        calls.push("context.with");
        return fn.call(thisArg, ...args);
      },
      bind(_context, target) {
        calls.push("context.bind");
        return target;
      },
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    },
  };
}

Deno.test("tracing off: handling, batches, publishing and dead-lettering never call OpenTelemetry", async () => {
  assert.equal(TRACING_ON, false, "this test needs OTEL_DENO unset");
  const calls: string[] = [];
  const providers = countingProviders(calls);
  assert.ok(trace.setGlobalTracerProvider(providers.tracer), "a tracer provider was registered");
  assert.ok(context.setGlobalContextManager(providers.context), "a context manager was registered");
  try {
    // The counters count: the API does hand calls to them.
    context.active();
    trace.getTracer("probe").startSpan("probe").end();
    assert.deepEqual(calls.splice(0), ["context.active", "getTracer probe", "startSpan"]);

    await using nsq = await startNsq({ lookupd: false });
    const topic = uniqueTopic("untraced");
    const nsqd = nsq.nsqds[0]!.tcpAddress;
    const handled = Promise.withResolvers<void>();
    let seen = 0;
    const relay: WorkerDefinition<{ n: number }> = {
      async handle(body, ctx) {
        ctx.log.info("relaying", { n: body.n });
        if (body.n === 2) throw new Error("refusing on purpose");
        await ctx.publish(`${topic}.next`, { from: body.n });
        if (++seen === 1) handled.resolve();
      },
    };
    const batches: WorkerDefinition<{ n: number }> = {
      async handleBatch(items, ctx) {
        ctx.log.info("relaying a batch", { items: items.length });
        await ctx.publishMany(`${topic}_batch.next`, items.map(({ body }) => ({ from: body.n })));
        return items.map(({ body }) => body.n === 2 ? new Error("refusing on purpose") : undefined);
      },
    };
    await using daemon = await startInProcess({
      yaml: `
nsq:
  nsqd_tcp_addresses: [${nsqd}]
  publish_nsqd_tcp_address: ${nsqd}
http:
  listen: null
workers:
  - topic: ${topic}
    channel: work
    worker: test/relay
    max_attempts: 1
  - topic: ${topic}_batch
    channel: work
    worker: test/batches
    max_attempts: 1
    max_in_flight: 2
    batch: { size: 2, wait: 50ms }
`,
      workers: {
        "test/relay": relay as WorkerDefinition,
        "test/batches": batches as WorkerDefinition,
      },
    });
    const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await nsq.publishMany(topic, [
      JSON.stringify({ n: 1, traceparent: parent }),
      JSON.stringify({ n: 2, traceparent: parent }),
    ]);
    await nsq.publishMany(`${topic}_batch`, [
      JSON.stringify({ n: 1, traceparent: parent }),
      JSON.stringify({ n: 2, traceparent: parent }),
    ]);
    const [followUp] = await nsq.readTopic(`${topic}.next`, 1, { channel: "check" });
    const [deadLetter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
    const batchFollowUps = await nsq.readTopic(`${topic}_batch.next`, 2, { channel: "check" });
    const [batchDeadLetter] = await nsq.readTopic(`${topic}_batch.dead`, 1, { channel: "check" });
    await handled.promise;
    await daemon.shutdown();

    assert.deepEqual(JSON.parse(new TextDecoder().decode(followUp)), { from: 1 });
    assert.equal(JSON.parse(new TextDecoder().decode(deadLetter)).traceparent, undefined);
    assert.deepEqual(
      batchFollowUps.map((bytes) => JSON.parse(new TextDecoder().decode(bytes))),
      [{ from: 1 }, { from: 2 }],
    );
    assert.equal(JSON.parse(new TextDecoder().decode(batchDeadLetter)).traceparent, undefined);
    assert.ok(daemon.logs.every((record) => !("trace_id" in record)));
    assert.deepEqual(calls, []);
  } finally {
    trace.disable();
    context.disable();
  }
});
