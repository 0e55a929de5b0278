/**
 * The Prometheus text exposition (format 0.0.4) of src/daemon/http/: line
 * syntax, escaping, histogram buckets and the metric names of a snapshot.
 */

import assert from "node:assert/strict";
import { DURATION_BUCKETS_MS } from "../../src/observe/entry_stats.ts";
import { renderMetrics } from "../../src/daemon/http/metrics.ts";
import {
  escapeLabelValue,
  formatFamilies,
  formatValue,
  histogramSamples,
} from "../../src/daemon/http/prometheus.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";

interface ParsedSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface Parsed {
  readonly types: Map<string, string>;
  readonly helps: Map<string, string>;
  readonly samples: ParsedSample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)\\})? (\\S+)$`);

/**
 * A strict reader of the format: every line must be a HELP, a TYPE or a
 * sample of the family last declared; it throws on anything else.
 */
function parseExposition(text: string): Parsed {
  assert.ok(text.endsWith("\n"), "the text ends with a newline");
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: ParsedSample[] = [];
  let family: string | null = null;
  for (const line of text.slice(0, -1).split("\n")) {
    const help = line.match(new RegExp(`^# HELP (${NAME}) (.*)$`));
    if (help) {
      assert.ok(!helps.has(help[1]!), `one HELP for ${help[1]}`);
      helps.set(help[1]!, help[2]!);
      family = help[1]!;
      continue;
    }
    const type = line.match(new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram)$`));
    if (type) {
      assert.equal(type[1], family, `TYPE ${type[1]} follows its HELP`);
      assert.ok(!types.has(type[1]!), `one TYPE for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = line.match(SAMPLE);
    assert.ok(sample, `a valid sample line: ${JSON.stringify(line)}`);
    const name = sample[1]!;
    const base = types.get(family ?? "") === "histogram"
      ? name.replace(/_(bucket|sum|count)$/, "")
      : name;
    assert.equal(base, family, `${name} belongs to the family declared above it`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (sample[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = raw!.replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    }
    const value = sample[3] === "+Inf" ? Infinity : Number(sample[3]);
    assert.ok(!Number.isNaN(value) || sample[3] === "NaN", `a number: ${sample[3]}`);
    samples.push({ name, labels, value });
  }
  return { types, helps, samples };
}

function find(parsed: Parsed, name: string, labels: Record<string, string>): number | undefined {
  return parsed.samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
    Object.keys(s.labels).length === Object.keys(labels).length
  )?.value;
}

Deno.test("formatFamilies writes HELP, TYPE, then the samples, and ends with a newline", () => {
  const text = formatFamilies([
    { name: "up", help: "Up.", type: "gauge", samples: [{ labels: {}, value: 1 }] },
    {
      name: "jobs_total",
      help: "Jobs.",
      type: "counter",
      samples: [
        { labels: { queue: "a", kind: "x" }, value: 3 },
        { labels: { queue: "b", kind: "y" }, value: 0 },
      ],
    },
  ]);
  assert.equal(
    text,
    "# HELP up Up.\n# TYPE up gauge\nup 1\n" +
      "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n" +
      'jobs_total{queue="a",kind="x"} 3\njobs_total{queue="b",kind="y"} 0\n',
  );
});

Deno.test("label values escape backslash, double quote and line feed; HELP escapes \\ and \\n", () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeLabelValue("plain.topic#ephemeral"), "plain.topic#ephemeral");
  const text = formatFamilies([{
    name: "x",
    help: 'back\\slash\nnew "line"',
    type: "gauge",
    samples: [{ labels: { v: 'q"\\\n' }, value: 2 }],
  }]);
  assert.equal(text, '# HELP x back\\\\slash\\nnew "line"\n# TYPE x gauge\nx{v="q\\"\\\\\\n"} 2\n');
  const parsed = parseExposition(text);
  assert.equal(parsed.samples[0]!.labels.v, 'q"\\\n', "reads back to the original");
});

Deno.test("values: integers, decimals, +Inf, -Inf and NaN", () => {
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(42), "42");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(formatValue(0.001), "0.001");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
});

Deno.test("histogramSamples: a bucket per bound, +Inf, _sum and _count", () => {
  const samples = histogramSamples({ topic: "t" }, [0.1, 1], [2, 5, 6], 3.5, 6);
  assert.deepEqual(samples, [
    { suffix: "_bucket", labels: { topic: "t", le: "0.1" }, value: 2 },
    { suffix: "_bucket", labels: { topic: "t", le: "1" }, value: 5 },
    { suffix: "_bucket", labels: { topic: "t", le: "+Inf" }, value: 6 },
    { suffix: "_sum", labels: { topic: "t" }, value: 3.5 },
    { suffix: "_count", labels: { topic: "t" }, value: 6 },
  ]);
});

Deno.test("renderMetrics: every family of a snapshot, with types and labels", () => {
  const entry = fakeEntry({}, [
    { kind: "finish", durationMs: 0.4 },
    { kind: "finish", durationMs: 3 },
    { kind: "finish", durationMs: 70_000 },
    { kind: "retry", delayMs: 10, error: "boom", durationMs: 12 },
    { kind: "dead", reason: "decode", error: "bad", durationMs: null },
    { kind: "duplicate" },
  ], 2);
  const other = fakeEntry({
    topic: "clicks",
    nsqTopic: "env.clicks",
    channel: "archive#ephemeral",
    state: "failed",
    failure: "setup() failed: nope",
    consumer: {
      connected: [],
      disconnected: ["127.0.0.1:4150"],
      paused: true,
      rdy: 0,
      nsqds: [{ address: "127.0.0.1:4150", connected: false, rdy: 0, inFlight: 0 }],
    },
  });
  const parsed = parseExposition(
    renderMetrics(fakeSnapshot([entry, other], { uptimeMs: 1500, draining: true })),
  );
  assert.deepEqual(Object.fromEntries(parsed.types), {
    nsqworker_build_info: "gauge",
    nsqworker_uptime_seconds: "gauge",
    nsqworker_ready: "gauge",
    nsqworker_draining: "gauge",
    nsqworker_entry_info: "gauge",
    nsqworker_entry_state: "gauge",
    nsqworker_messages_total: "counter",
    nsqworker_dead_letter_failures_total: "counter",
    nsqworker_dedupe_store_failures_total: "counter",
    nsqworker_invalid_traceparents_total: "counter",
    nsqworker_dedupe_bypassed_total: "counter",
    nsqworker_in_flight: "gauge",
    nsqworker_max_in_flight: "gauge",
    nsqworker_rdy: "gauge",
    nsqworker_connections: "gauge",
    nsqworker_paused: "gauge",
    nsqworker_handler_duration_seconds: "histogram",
    nsqworker_child_restarts_total: "counter",
  });
  const a = { topic: "pageviews", channel: "counter" };
  const b = { topic: "clicks", channel: "archive#ephemeral" };
  assert.equal(find(parsed, "nsqworker_build_info", { version: "9.9.9" }), 1);
  assert.equal(find(parsed, "nsqworker_uptime_seconds", {}), 1.5);
  assert.equal(find(parsed, "nsqworker_ready", {}), 1);
  assert.equal(find(parsed, "nsqworker_draining", {}), 1);
  assert.equal(
    find(parsed, "nsqworker_entry_info", {
      ...a,
      nsq_topic: "env.pageviews",
      worker: "demo/pageview",
    }),
    1,
  );
  assert.equal(find(parsed, "nsqworker_entry_state", { ...b, state: "failed" }), 1);
  assert.equal(find(parsed, "nsqworker_entry_state", { ...b, state: "running" }), 0);
  assert.equal(find(parsed, "nsqworker_messages_total", { ...a, outcome: "finish" }), 3);
  assert.equal(find(parsed, "nsqworker_messages_total", { ...a, outcome: "retry" }), 1);
  assert.equal(find(parsed, "nsqworker_messages_total", { ...a, outcome: "dead" }), 1);
  assert.equal(find(parsed, "nsqworker_messages_total", { ...a, outcome: "duplicate" }), 1);
  assert.equal(find(parsed, "nsqworker_messages_total", { ...a, outcome: "interrupted" }), 0);
  assert.equal(
    parsed.samples.filter((s) => s.name === "nsqworker_messages_total").length,
    2 * 6,
    "every outcome of every entry, zeros included",
  );
  assert.equal(find(parsed, "nsqworker_in_flight", a), 2);
  assert.equal(find(parsed, "nsqworker_max_in_flight", a), 10);
  assert.equal(find(parsed, "nsqworker_rdy", a), 10);
  assert.equal(find(parsed, "nsqworker_connections", a), 1);
  assert.equal(find(parsed, "nsqworker_connections", b), 0);
  assert.equal(find(parsed, "nsqworker_paused", a), 0);
  assert.equal(find(parsed, "nsqworker_paused", b), 1);
  assert.equal(find(parsed, "nsqworker_dead_letter_failures_total", a), 0);

  // The handler ran 4 times: 0.4 ms, 3 ms, 12 ms and 70 s (beyond the last bound).
  const buckets = parsed.samples.filter((s) =>
    s.name === "nsqworker_handler_duration_seconds_bucket" && s.labels.topic === "pageviews"
  );
  assert.deepEqual(
    buckets.map((s) => s.labels.le),
    [...DURATION_BUCKETS_MS.map((ms) => String(ms / 1000)), "+Inf"],
  );
  assert.equal(buckets[0]!.labels.le, "0.001");
  const counts = buckets.map((s) => s.value);
  assert.deepEqual(counts.slice(0, 4), [1, 1, 2, 2], "le 0.001, 0.002, 0.005, 0.01");
  assert.equal(counts[4], 3, "le 0.025 takes the 12 ms one");
  assert.equal(counts.at(-2), 3, "le 60: the 70 s one is only in +Inf");
  assert.equal(counts.at(-1), 4);
  for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!, "cumulative");
  assert.equal(find(parsed, "nsqworker_handler_duration_seconds_count", a), 4);
  const sum = find(parsed, "nsqworker_handler_duration_seconds_sum", a)!;
  assert.ok(Math.abs(sum - 70.0154) < 1e-9, `sum in seconds: ${sum}`);
  assert.equal(find(parsed, "nsqworker_handler_duration_seconds_count", b), 0);
  assert.equal(
    find(parsed, "nsqworker_handler_duration_seconds_bucket", { ...b, le: "+Inf" }),
    0,
  );
});

Deno.test("child restarts: one counter per reason for an entry with processes, none for one without", () => {
  const withChildren = fakeEntry({
    children: [{ pid: 4242, rssBytes: 50_000_000, restarts: 3, inFlight: 1 }],
    childRestarts: { exit: 1, crash: 0, timeout_kill: 2, memory: 0, killed: 0 },
  });
  const without = fakeEntry({ topic: "clicks" });
  const parsed = parseExposition(renderMetrics(fakeSnapshot([withChildren, without])));
  const restarts = parsed.samples.filter((s) => s.name === "nsqworker_child_restarts_total");
  assert.deepEqual(
    restarts.map((s) => [s.labels.topic, s.labels.reason, s.value]),
    [
      ["pageviews", "exit", 1],
      ["pageviews", "crash", 0],
      ["pageviews", "timeout_kill", 2],
      ["pageviews", "memory", 0],
      ["pageviews", "killed", 0],
    ],
  );
});

Deno.test("renderMetrics with no entries still declares every family", () => {
  const parsed = parseExposition(
    renderMetrics(fakeSnapshot([], { readiness: { ready: false, reasons: ["draining"] } })),
  );
  assert.equal(find(parsed, "nsqworker_ready", {}), 0);
  assert.equal(parsed.types.get("nsqworker_messages_total"), "counter");
  assert.equal(parsed.samples.filter((s) => "topic" in s.labels).length, 0);
});
