import assert from "node:assert/strict";
import {
  DEFAULT_SAMPLER,
  readTraceSampler,
  sampledAsRoot,
  sampledWithParent,
  SAMPLER_NAMES,
  traceIdRatioSampled,
  type TraceSampler,
} from "../../src/observe/trace_sampler.ts";

function sampler(name?: string, argument?: string): TraceSampler {
  return readTraceSampler((variable) =>
    variable === "OTEL_TRACES_SAMPLER"
      ? name
      : variable === "OTEL_TRACES_SAMPLER_ARG"
      ? argument
      : undefined
  );
}

function randomTraceId(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** The rule with 64-bit integers, as Deno's Rust and Go's SDK write it. */
function reference(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  const bound = BigInt(Math.floor(Math.max(0, ratio) * 2 ** 63));
  return (BigInt(`0x${traceId.slice(16)}`) >> 1n) < bound;
}

/** A trace id whose last 8 bytes are `low`. */
function withLow(low: bigint): string {
  return `0af7651916cd43dd${low.toString(16).padStart(16, "0")}`;
}

Deno.test("readTraceSampler reads the six standard names, parentbased_always_on by default", () => {
  assert.deepEqual(sampler(), DEFAULT_SAMPLER);
  assert.deepEqual(sampler(""), DEFAULT_SAMPLER);
  assert.deepEqual(sampler("always_on"), { name: "always_on", parentBased: false, ratio: 1 });
  assert.deepEqual(sampler("always_off"), { name: "always_off", parentBased: false, ratio: 0 });
  assert.deepEqual(sampler("traceidratio", "0.25"), {
    name: "traceidratio",
    parentBased: false,
    ratio: 0.25,
  });
  assert.deepEqual(sampler("parentbased_always_on"), DEFAULT_SAMPLER);
  assert.deepEqual(sampler("parentbased_always_off"), {
    name: "parentbased_always_off",
    parentBased: true,
    ratio: 0,
  });
  assert.deepEqual(sampler("parentbased_traceidratio", "0.01"), {
    name: "parentbased_traceidratio",
    parentBased: true,
    ratio: 0.01,
  });
  // Trimmed, as Deno trims it; the argument matters only to a ratio.
  assert.equal(sampler(" always_off\n").name, "always_off");
  assert.equal(sampler("always_on", "0.5").ratio, 1);
  assert.equal(sampler("parentbased_always_off", "0.5").ratio, 0);
  assert.equal(SAMPLER_NAMES.length, 6);
});

Deno.test("readTraceSampler gives the default for a name it does not know, as OpenTelemetry asks", () => {
  for (const name of ["bogus", "TraceIdRatio", "parentbased_", "jaeger_remote"]) {
    assert.deepEqual(sampler(name, "0.5"), DEFAULT_SAMPLER, name);
  }
});

Deno.test("readTraceSampler reads the ratio as Deno does: 1 when unset or no number, clamped, NaN as 0", () => {
  const cases: [string | undefined, number][] = [
    [undefined, 1],
    ["", 1],
    ["abc", 1],
    ["0x0", 1], // not a number to Deno (Rust), although it is to JavaScript's Number()
    ["1_000", 1],
    ["0.01", 0.01],
    [" 0.25 ", 0.25],
    [".25", 0.25],
    ["1e-1", 0.1],
    ["+0.5", 0.5],
    ["5.", 1],
    ["1.5", 1],
    ["-1", 0],
    ["0", 0],
    ["nan", 0],
    ["NaN", 0],
    ["inf", 1],
    ["-Infinity", 0],
  ];
  for (const [argument, ratio] of cases) {
    assert.equal(sampler("traceidratio", argument).ratio, ratio, JSON.stringify(argument));
    assert.equal(sampler("parentbased_traceidratio", argument).ratio, ratio);
  }
});

Deno.test("traceIdRatioSampled is the 64-bit rule, exact at the bound", () => {
  const ratios = [0, 1e-12, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.999999, 1];
  for (const ratio of ratios) {
    const bound = BigInt(Math.floor(ratio * 2 ** 63));
    const edges = [0n, 1n, 2n * bound - 1n, 2n * bound, 2n * bound + 1n, 2n ** 64n - 1n]
      .filter((low) => low >= 0n && low < 2n ** 64n);
    for (const low of edges) {
      const traceId = withLow(low);
      assert.equal(traceIdRatioSampled(traceId, ratio), reference(traceId, ratio), traceId);
    }
    for (let i = 0; i < 2_000; i++) {
      const traceId = randomTraceId();
      assert.equal(traceIdRatioSampled(traceId, ratio), reference(traceId, ratio), traceId);
    }
  }
  // Half of the ids: those whose last 8 bytes are below 2^63.
  assert.equal(traceIdRatioSampled(withLow(2n ** 63n - 1n), 0.5), true);
  assert.equal(traceIdRatioSampled(withLow(2n ** 63n), 0.5), false);
  assert.equal(traceIdRatioSampled(withLow(0n), 0), false);
  assert.equal(traceIdRatioSampled(withLow(2n ** 64n - 1n), 1), true);
});

Deno.test("sampledWithParent follows the parent's flag under parentbased_*, the trace id otherwise", () => {
  const passes = withLow(1n); // sampled at any ratio above 0
  const fails = withLow(2n ** 64n - 1n); // sampled only at 1
  const parent = (traceId: string, traceFlags: number) => ({
    traceId,
    spanId: "b7ad6b7169203331",
    traceFlags,
  });
  for (const name of ["parentbased_always_on", "parentbased_always_off"]) {
    assert.equal(sampledWithParent(sampler(name), parent(passes, 1)), true, name);
    assert.equal(sampledWithParent(sampler(name), parent(passes, 0)), false, name);
  }
  const parentRatio = sampler("parentbased_traceidratio", "0.01");
  assert.equal(sampledWithParent(parentRatio, parent(fails, 1)), true);
  assert.equal(sampledWithParent(parentRatio, parent(passes, 0)), false);
  // Other flag bits say nothing about sampling.
  assert.equal(sampledWithParent(parentRatio, parent(fails, 0x03)), true);
  assert.equal(sampledWithParent(parentRatio, parent(passes, 0x02)), false);

  const ratio = sampler("traceidratio", "0.01");
  assert.equal(sampledWithParent(ratio, parent(passes, 0)), true);
  assert.equal(sampledWithParent(ratio, parent(fails, 1)), false);
  assert.equal(sampledWithParent(sampler("always_on"), parent(fails, 0)), true);
  assert.equal(sampledWithParent(sampler("always_off"), parent(passes, 1)), false);
});

Deno.test("sampledAsRoot decides a new trace by its root sampler", () => {
  const low = withLow(1n);
  const high = withLow(2n ** 64n - 1n);
  for (const name of ["always_on", "parentbased_always_on"]) {
    assert.equal(sampledAsRoot(sampler(name), high), true, name);
  }
  for (const name of ["always_off", "parentbased_always_off"]) {
    assert.equal(sampledAsRoot(sampler(name), low), false, name);
  }
  for (const name of ["traceidratio", "parentbased_traceidratio"]) {
    assert.equal(sampledAsRoot(sampler(name, "0.01"), low), true, name);
    assert.equal(sampledAsRoot(sampler(name, "0.01"), high), false, name);
    assert.equal(sampledAsRoot(sampler(name, "0"), low), false, name);
  }
});

Deno.test("Deno's own sampler decides as these functions do", async () => {
  // Children of remote parents (traceidratio ignores their flags) and roots Deno draws itself.
  const traceIds = Array.from({ length: 300 }, () => randomTraceId());
  const script = `
    import { ROOT_CONTEXT, trace } from "npm:@opentelemetry/api@1.10.0";
    const tracer = trace.getTracer("probe");
    const ids = ${JSON.stringify(traceIds)};
    const decided = [];
    for (const traceId of ids) {
      const parent = trace.setSpanContext(ROOT_CONTEXT, {
        traceId, spanId: "b7ad6b7169203331", traceFlags: ids.indexOf(traceId) % 2, isRemote: true,
      });
      decided.push([traceId, tracer.startSpan("child", {}, parent).spanContext().traceFlags & 1]);
    }
    for (let i = 0; i < 300; i++) {
      const { traceId, traceFlags } = tracer.startSpan("root", {}, ROOT_CONTEXT).spanContext();
      decided.push([traceId, traceFlags & 1]);
    }
    console.log(JSON.stringify(decided));
  `;
  for (const argument of ["0.3", " 0.7", "0x0"]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      env: {
        OTEL_DENO: "true",
        OTEL_TRACES_SAMPLER: "traceidratio",
        OTEL_TRACES_SAMPLER_ARG: argument,
        // Nothing listens there; the few spans sampled are dropped at exit.
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const ratio = sampler("traceidratio", argument).ratio;
    const decided = JSON.parse(new TextDecoder().decode(output.stdout)) as [string, number][];
    assert.equal(decided.length, 600);
    const disagreements = decided.filter(([traceId, flag]) =>
      traceIdRatioSampled(traceId, ratio) !== (flag === 1)
    );
    assert.deepEqual(disagreements, [], `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(argument)}`);
  }
});
