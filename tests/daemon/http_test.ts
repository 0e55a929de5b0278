/**
 * The HTTP surface: the handler called directly with fake dependencies
 * (every route, status codes, JSON shapes, token checks), then served by a
 * daemon running in process on a real nsqd (stats, metrics, pause and
 * resume seen from nsqd), and `nsqworker run` as a process (port 0, /ready
 * while draining).
 */

import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/config_error.ts";
import { loadConfig } from "../../src/config/load.ts";
import { createHandler, type HandlerDeps } from "../../src/daemon/http/handler.ts";
import { sameSecret } from "../../src/daemon/http/bearer_auth.ts";
import { startHttpServer } from "../../src/daemon/http/server.ts";
import type { EntrySnapshot } from "../../src/daemon/http/snapshot.ts";
import { VERSION } from "../../src/version.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";
import { startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const TOKEN = "0123456789abcdef";
/** The `http:` section of a daemon in process: any free port, pause and resume on. */
const HTTP_ON = `http:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}`;

interface Calls {
  paused: [string, string][];
  resumed: [string, string][];
  errors: Record<string, unknown>[];
}

/** A handler over fixed figures that records pause and resume calls. */
function fakeHandler(overrides: Partial<HandlerDeps> = {}) {
  const calls: Calls = { paused: [], resumed: [], errors: [] };
  const entry = fakeEntry({ channel: "counter#ephemeral" });
  const known = (topic: string, channel: string) =>
    topic === entry.topic && channel === entry.channel;
  const log: Logger = {
    debug() {},
    info() {},
    warning() {},
    error: (_message, fields) => calls.errors.push(fields ?? {}),
  };
  const handler = createHandler({
    readiness: () => ({ ready: true, reasons: [] }),
    snapshot: () => fakeSnapshot([entry]),
    pause(topic, channel) {
      calls.paused.push([topic, channel]);
      return known(topic, channel) ? withPaused(entry, true) : null;
    },
    resume(topic, channel) {
      calls.resumed.push([topic, channel]);
      return known(topic, channel) ? withPaused(entry, false) : null;
    },
    token: TOKEN,
    log,
    ...overrides,
  });
  return { handler, calls };
}

function withPaused(entry: EntrySnapshot, paused: boolean): EntrySnapshot {
  return { ...entry, consumer: { ...entry.consumer, paused, rdy: paused ? 0 : 10 } };
}

function request(path: string, init: RequestInit = {}): Request {
  return new Request(`http://127.0.0.1:4190${path}`, init);
}

function post(path: string, authorization?: string): Request {
  return request(path, {
    method: "POST",
    ...(authorization === undefined ? {} : { headers: { Authorization: authorization } }),
  });
}

const PAUSE = "/entries/pageviews/counter%23ephemeral/pause";
const RESUME = "/entries/pageviews/counter%23ephemeral/resume";

Deno.test("GET /ping answers 200 OK", async () => {
  const { handler } = fakeHandler();
  const response = await handler(request("/ping"));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-store");
  assert.equal(await response.text(), "OK");
});

Deno.test("GET /ready: 200 when ready, 503 with the reasons when not", async () => {
  const ready = await fakeHandler().handler(request("/ready"));
  assert.equal(ready.status, 200);
  assert.equal(ready.headers.get("content-type"), "application/json; charset=utf-8");
  assert.deepEqual(await ready.json(), { ready: true });

  const reasons = ["draining: the daemon is shutting down", "a/b: no nsqd connection"];
  const { handler } = fakeHandler({ readiness: () => ({ ready: false, reasons }) });
  const notReady = await handler(request("/ready"));
  assert.equal(notReady.status, 503);
  assert.deepEqual(await notReady.json(), { ready: false, reasons });
});

Deno.test("GET /stats: the daemon's fields and one object per entry", async () => {
  const entry = fakeEntry({}, [
    { kind: "finish", durationMs: 3 },
    { kind: "finish", durationMs: 40 },
    { kind: "retry", delayMs: 10, error: "boom", durationMs: 7 },
  ], 1);
  const { handler } = fakeHandler({
    snapshot: () =>
      fakeSnapshot([entry], {
        draining: true,
        readiness: { ready: false, reasons: ["draining: the daemon is shutting down"] },
      }),
  });
  const response = await handler(request("/stats"));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  assert.deepEqual(await response.json(), {
    version: "9.9.9",
    uptime_seconds: 12.5,
    draining: true,
    ready: false,
    reasons: ["draining: the daemon is shutting down"],
    entries: [{
      topic: "pageviews",
      nsq_topic: "env.pageviews",
      channel: "counter",
      worker: "demo/pageview",
      state: "running",
      failure: null,
      paused: false,
      max_in_flight: 10,
      in_flight: 1,
      connections: { connected: ["127.0.0.1:4150"], disconnected: [], rdy: 10 },
      outcomes: { finish: 2, duplicate: 0, busy: 0, retry: 1, dead: 0, interrupted: 0 },
      dead_letter_failures: 0,
      dedupe_store_failures: 0,
      dedupe_bypassed: 0,
      invalid_traceparents: 0,
      handler_duration_ms: { count: 3, sum: 50, p50: 10, p99: 50 },
    }],
  });
});

Deno.test("GET /metrics: the text format with the daemon's metric names", async () => {
  const { handler } = fakeHandler();
  const response = await handler(request("/metrics"));
  assert.equal(response.status, 200);
  assert.equal(
    response.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  const text = await response.text();
  for (
    const name of [
      "nsqworker_ready",
      "nsqworker_messages_total",
      "nsqworker_in_flight",
      "nsqworker_connections",
      "nsqworker_paused",
      "nsqworker_dead_letter_failures_total",
      "nsqworker_handler_duration_seconds",
    ]
  ) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
  }
  assert.match(
    text,
    /^nsqworker_messages_total\{topic="pageviews",channel="counter#ephemeral",outcome="finish"\} 0$/m,
  );
});

Deno.test("HEAD answers like GET, without a body", async () => {
  const { handler } = fakeHandler();
  const response = await handler(request("/stats", { method: "HEAD" }));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(response.body, null);
});

Deno.test("a wrong method is 405 with Allow; an unknown path is 404; both JSON", async () => {
  const { handler, calls } = fakeHandler();
  for (const path of ["/ping", "/ready", "/stats", "/metrics"]) {
    const response = await handler(request(path, { method: "POST" }));
    assert.equal(response.status, 405, path);
    assert.equal(response.headers.get("allow"), "GET, HEAD");
    assert.deepEqual(await response.json(), {
      error: `POST is not allowed on ${path}; use GET, HEAD`,
    });
  }
  const get = await handler(request(PAUSE, { headers: { Authorization: `Bearer ${TOKEN}` } }));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  assert.match((await get.json()).error, /GET is not allowed on .*; use POST/);

  for (const path of ["/", "/nope", "/ping/", "/entries/pageviews/counter/stop", "/entries/x"]) {
    const response = await handler(request(path));
    assert.equal(response.status, 404, path);
    assert.match((await response.json()).error, /^no such endpoint: /);
  }
  assert.deepEqual(calls.paused, []);
});

Deno.test("pause and resume with the token act on the entry named by the decoded path", async () => {
  const { handler, calls } = fakeHandler();
  const paused = await handler(post(PAUSE, `Bearer ${TOKEN}`));
  assert.equal(paused.status, 200);
  const body = await paused.json();
  assert.equal(body.topic, "pageviews");
  assert.equal(body.channel, "counter#ephemeral");
  assert.equal(body.paused, true);
  assert.equal(body.connections.rdy, 0);
  assert.deepEqual(calls.paused, [["pageviews", "counter#ephemeral"]]);

  // The scheme is case-insensitive (RFC 7235).
  const resumed = await handler(post(RESUME, `bearer ${TOKEN}`));
  assert.equal(resumed.status, 200);
  assert.equal((await resumed.json()).paused, false);
  assert.deepEqual(calls.resumed, [["pageviews", "counter#ephemeral"]]);
});

Deno.test("pause and resume without the token, or with another one, are 401 and do nothing", async () => {
  const { handler, calls } = fakeHandler();
  const sameLength = "0123456789abcdeX";
  assert.equal(sameLength.length, TOKEN.length);
  const cases: [string | undefined, string][] = [
    [undefined, 'Bearer realm="nsqworker"'],
    ["Bearer", 'Bearer realm="nsqworker"'],
    ["Bearer ", 'Bearer realm="nsqworker"'],
    [`Basic ${btoa(`user:${TOKEN}`)}`, 'Bearer realm="nsqworker"'],
    [TOKEN, 'Bearer realm="nsqworker"'],
    [`Bearer ${sameLength}`, 'Bearer realm="nsqworker", error="invalid_token"'],
    [`Bearer ${TOKEN}x`, 'Bearer realm="nsqworker", error="invalid_token"'],
    [`Bearer ${TOKEN.slice(0, -1)}`, 'Bearer realm="nsqworker", error="invalid_token"'],
    ["Bearer wrong", 'Bearer realm="nsqworker", error="invalid_token"'],
  ];
  for (const [authorization, challenge] of cases) {
    for (const path of [PAUSE, RESUME]) {
      const response = await handler(post(path, authorization));
      assert.equal(response.status, 401, `${path} with ${authorization}`);
      assert.equal(response.headers.get("www-authenticate"), challenge);
      const { error } = await response.json();
      assert.match(error, /Authorization: Bearer|not the configured http.token/);
      assert.ok(!error.includes(TOKEN), "the refusal does not quote the token");
    }
  }
  // Unknown entries are refused the same way: no probing for names without the token.
  const unknown = await handler(post("/entries/secret-topic/c/pause", "Bearer nope"));
  assert.equal(unknown.status, 401);
  await unknown.body?.cancel();
  assert.deepEqual(calls.paused, []);
  assert.deepEqual(calls.resumed, []);
});

Deno.test("without a configured token pause and resume are disabled: 403", async () => {
  const { handler, calls } = fakeHandler({ token: null });
  for (const authorization of [undefined, `Bearer ${TOKEN}`, "Bearer "]) {
    const response = await handler(post(PAUSE, authorization));
    assert.equal(response.status, 403);
    assert.deepEqual(await response.json(), {
      error: "pause and resume are disabled: set http.token in the config to enable them",
    });
  }
  assert.deepEqual(calls.paused, []);
});

Deno.test("an unknown entry is 404; a broken percent-encoding is 400", async () => {
  const { handler, calls } = fakeHandler();
  const unknown = await handler(post("/entries/pageviews/other/pause", `Bearer ${TOKEN}`));
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), {
    error: 'no entry consumes topic "pageviews" with channel "other" ' +
      "(use the topic as configured, without topic_prefix)",
  });
  // The channel as configured has "#ephemeral": unencoded, '#' starts the fragment.
  const fragment = await handler(
    post("/entries/pageviews/counter#ephemeral/pause", `Bearer ${TOKEN}`),
  );
  assert.equal(fragment.status, 404);
  assert.match((await fragment.json()).error, /^no such endpoint: \/entries\/pageviews\/counter;/);
  const broken = await handler(post("/entries/page%E0%A4%A/counter/pause", `Bearer ${TOKEN}`));
  assert.equal(broken.status, 400);
  assert.match((await broken.json()).error, /bad percent-encoding/);
  assert.deepEqual(calls.paused, [["pageviews", "other"]]);
});

Deno.test("a route that throws is a 500 with a JSON error, and is logged", async () => {
  const { handler, calls } = fakeHandler({
    snapshot: () => {
      throw new Error("figures unavailable");
    },
  });
  const response = await handler(request("/stats"));
  assert.equal(response.status, 500);
  assert.deepEqual(await response.json(), {
    error: "internal error; the daemon's log has the details",
  });
  assert.deepEqual(calls.errors, [{
    method: "GET",
    path: "/stats",
    error: "figures unavailable",
  }]);
});

Deno.test("sameSecret compares whole secrets of any length", async () => {
  assert.equal(await sameSecret(TOKEN, TOKEN), true);
  assert.equal(await sameSecret("0123456789abcdeX", TOKEN), false);
  assert.equal(await sameSecret("", TOKEN), false);
  assert.equal(await sameSecret(TOKEN + TOKEN, TOKEN), false);
  assert.equal(await sameSecret("ünïcode ✓", "ünïcode ✓"), true);
});

Deno.test("config: a non-loopback http.listen without a token is refused", async () => {
  await using dir = await TempDir.create();
  const file = (...http: string[]) =>
    dir.writeConfig(
      "nsq: {nsqd_tcp_addresses: [127.0.0.1:4150]}\nhttp:\n" +
        http.map((line) => `  ${line}\n`).join("") +
        "workers: [{topic: t, channel: c, worker: demo/pageview}]\n",
    );
  const notLoopback = (error: unknown) =>
    error instanceof ConfigError && /which is not loopback: set http\.token/.test(error.message);
  for (const listen of ["0.0.0.0:4190", "'[::]:4190'", "10.1.2.3:80", "example.com:4190"]) {
    await assert.rejects(loadConfig(await file(`listen: ${listen}`), {}), notLoopback, listen);
    await assert.rejects(
      loadConfig(await file(`listen: ${listen}`, "token: ${T:-}"), {}),
      notLoopback,
      `${listen} with an empty token`,
    );
    const withToken = await loadConfig(await file(`listen: ${listen}`, "token: ${T}"), {
      T: "s3cret",
    });
    assert.equal(withToken.http.token, "s3cret");
  }
  for (const listen of ["127.0.0.1:4190", "localhost:0", "'[::1]:4190'"]) {
    assert.equal((await loadConfig(await file(`listen: ${listen}`), {})).http.token, null);
  }
});

Deno.test("startHttpServer serves on port 0 and names a port it cannot take", async () => {
  const { handler } = fakeHandler();
  const server = startHttpServer(handler, { host: "127.0.0.1", port: 0 });
  try {
    assert.ok(server.address.port > 0);
    assert.equal(server.addressText, `127.0.0.1:${server.address.port}`);
    const response = await fetch(`http://${server.addressText}/ping`);
    assert.equal(await response.text(), "OK");
    assert.throws(
      () => startHttpServer(handler, server.address),
      new RegExp(
        `^Error: cannot listen on 127\\.0\\.0\\.1:${server.address.port} \\(http\\.listen\\): `,
      ),
    );
  } finally {
    await server.shutdown();
    await server.shutdown();
  }
});

function yamlFor(
  nsq: NsqCluster,
  topic: string,
  entry: Record<string, unknown>,
  http = "",
): string {
  const settings = Object.entries({ topic, channel: "work", worker: "test/worker", ...entry })
    .map(([key, value]) => `    ${key}: ${JSON.stringify(value)}`).join("\n");
  return `
nsq:
  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]
  topic_prefix: env.
${http}
workers:
  - ${settings.trimStart()}
`;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

Deno.test("stats and metrics of a real run, served by the daemon's own server", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("httpstats");
  const held = Promise.withResolvers<void>();
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, {
      max_in_flight: 4,
      max_attempts: 2,
      requeue_delay: "0ms",
      max_requeue_delay: "0ms",
    }, HTTP_ON),
    workers: {
      "test/worker": {
        handle(body: { fail?: boolean; hold?: boolean }) {
          if (body.fail) throw new Error("refused on purpose");
          return body.hold ? held.promise : undefined;
        },
      },
    },
    // This test reads the figures right after it changes them.
    renderMaxAgeMs: 0,
  });
  const { supervisor } = daemon;
  const base = `http://${daemon.http!.addressText}`;
  await waitFor(() => supervisor.readiness().ready, { message: "connected" });
  await nsq.publishMany(`env.${topic}`, [
    ...Array.from({ length: 5 }, (_, n) => JSON.stringify({ n })),
    JSON.stringify({ fail: true }),
  ]);
  const stats = supervisor.entries[0]!.stats;
  // A dead outcome is counted before its dead letter is published; in_flight drops after.
  await waitFor(() => {
    const { outcomes, inFlight } = stats.snapshot();
    return outcomes.finish === 5 && outcomes.dead === 1 && inFlight === 0;
  });

  const response = await fetch(`${base}/stats`);
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.version, VERSION);
  assert.equal(body.ready, true);
  assert.equal(body.draining, false);
  assert.equal(typeof body.uptime_seconds, "number");
  const [entry] = body.entries;
  assert.equal(entry.topic, topic);
  assert.equal(entry.nsq_topic, `env.${topic}`);
  assert.equal(entry.channel, "work");
  assert.equal(entry.worker, "test/worker");
  assert.equal(entry.state, "running");
  assert.equal(entry.paused, false);
  assert.equal(entry.in_flight, 0);
  assert.deepEqual(entry.connections, {
    connected: [nsq.nsqds[0]!.tcpAddress],
    disconnected: [],
    rdy: 4,
  });
  assert.deepEqual(entry.outcomes, {
    finish: 5,
    duplicate: 0,
    busy: 0,
    retry: 1,
    dead: 1,
    interrupted: 0,
  });
  assert.equal(entry.dead_letter_failures, 0);
  assert.equal(entry.handler_duration_ms.count, 7, "5 finished, the failing one ran twice");
  assert.equal(typeof entry.handler_duration_ms.p50, "number");
  assert.equal(typeof entry.handler_duration_ms.p99, "number");

  const labels = `topic="${topic}",channel="work"`;
  const metrics = await (await fetch(`${base}/metrics`)).text();
  for (
    const line of [
      "nsqworker_ready 1",
      `nsqworker_messages_total{${labels},outcome="finish"} 5`,
      `nsqworker_messages_total{${labels},outcome="retry"} 1`,
      `nsqworker_messages_total{${labels},outcome="dead"} 1`,
      `nsqworker_in_flight{${labels}} 0`,
      `nsqworker_connections{${labels}} 1`,
      `nsqworker_rdy{${labels}} 4`,
      `nsqworker_paused{${labels}} 0`,
      `nsqworker_dead_letter_failures_total{${labels}} 0`,
      `nsqworker_handler_duration_seconds_bucket{${labels},le="+Inf"} 7`,
      `nsqworker_handler_duration_seconds_count{${labels}} 7`,
      `nsqworker_entry_info{${labels},nsq_topic="env.${topic}",worker="test/worker"} 1`,
    ]
  ) {
    assert.ok(metrics.split("\n").includes(line), `${line}\n---\n${metrics}`);
  }

  assert.deepEqual(await getJson(`${base}/ready`), { status: 200, body: { ready: true } });
  const served = await fetch(`${base}/metrics`);
  assert.equal(served.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.match(await served.text(), /^nsqworker_messages_total\{.*outcome="finish"\} 5$/m);

  // While the entries drain (a handler holds one message), /ready says 503 with the reason.
  await nsq.publish(`env.${topic}`, JSON.stringify({ hold: true }));
  await waitFor(() => stats.inFlight === 1, { message: "the held message in flight" });
  const shutdown = daemon.shutdown();
  const draining = await getJson(`${base}/ready`);
  assert.equal(draining.status, 503);
  assert.ok((draining.body.reasons as string[]).includes("draining: the daemon is shutting down"));
  held.resolve();
  await shutdown;
  const after = daemon.stats();
  assert.equal(after.draining, true);
  assert.equal(after.entries[0]!.state, "stopped");
  await assert.rejects(fetch(`${base}/ping`), "the server closes once the entries have drained");
});

Deno.test("pause gives RDY 0 on nsqd and nothing is handled; resume handles the backlog", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("httppause");
  const nsqTopic = `env.${topic}`;
  let handled = 0;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, { max_in_flight: 5 }, HTTP_ON),
    workers: { "test/worker": { handle: () => void handled++ } },
  });
  const base = `http://${daemon.http!.addressText}`;
  const readyCount = async () => (await nsq.channel(nsqTopic, "work"))?.clients[0]?.ready_count;
  await waitFor(async () => (await readyCount()) === 5, { message: "RDY 5 on nsqd" });
  const consumer = daemon.supervisor.entries[0]!.consumer;
  const send = async (action: string, authorization?: string) => {
    const response = await fetch(`${base}/entries/${topic}/work/${action}`, {
      method: "POST",
      ...(authorization === undefined ? {} : { headers: { Authorization: authorization } }),
    });
    return { status: response.status, body: await response.json() };
  };

  assert.equal((await send("pause")).status, 401);
  assert.equal((await send("pause", `Bearer ${"x".repeat(TOKEN.length)}`)).status, 401);
  assert.equal(consumer.status().paused, false, "refused: nothing paused");
  assert.equal(await readyCount(), 5);

  const paused = await send("pause", `Bearer ${TOKEN}`);
  assert.equal(paused.status, 200);
  assert.equal(paused.body.paused, true);
  assert.equal(paused.body.topic, topic);
  await waitFor(async () => (await readyCount()) === 0, { message: "RDY 0 on nsqd" });
  const logged = daemon.logs.find((r) => r.msg === "entry paused over HTTP");
  assert.equal(logged?.topic, topic);

  await nsq.publishMany(nsqTopic, Array.from({ length: 10 }, (_, n) => `{"n":${n}}`));
  // With RDY 0 confirmed by nsqd, it queues them all and sends none.
  await waitFor(async () => (await nsq.channel(nsqTopic, "work"))?.depth === 10);
  const channel = await nsq.channel(nsqTopic, "work");
  assert.equal(channel?.in_flight_count, 0);
  assert.equal(handled, 0);

  assert.equal((await send("resume")).status, 401);
  assert.equal((await send("resume", "Bearer wrong")).status, 401);
  assert.equal(consumer.status().paused, true, "refused: still paused");
  assert.equal((await send("nope/pause", `Bearer ${TOKEN}`)).status, 404);

  const resumed = await send("resume", `Bearer ${TOKEN}`);
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body.paused, false);
  await waitFor(() => handled === 10, { message: "the 10 queued messages handled" });
  await waitFor(async () => (await readyCount()) === 5, { message: "RDY back to 5" });
  assert.equal((await nsq.channel(nsqTopic, "work"))?.depth, 0);
});

Deno.test("nsqworker run: HTTP on port 0, the real port logged, /ready 503 while draining", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("httprun");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: "127.0.0.1:0" },
    shutdown_timeout: "10s",
    workers: [{
      topic,
      channel: "work",
      worker: "record",
      options: { out: dir.join("out.txt"), sleep_ms: 2000 },
    }],
  });
  const listening = JSON.parse(
    await daemon.waitForLine((line) => line.includes('"msg":"http listening"')),
  );
  assert.match(listening.address, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(listening.address, "127.0.0.1:0");
  assert.equal(listening.pause_resume, "disabled (no http.token)");
  const base = `http://${listening.address}`;
  assert.equal(await (await fetch(`${base}/ping`)).text(), "OK");
  await waitFor(async () => (await getJson(`${base}/ready`)).status === 200, {
    message: "/ready 200",
  });
  const pause = await fetch(`${base}/entries/${topic}/work/pause`, { method: "POST" });
  assert.equal(pause.status, 403);
  await pause.body?.cancel();

  await nsq.publish(topic, "slow");
  await daemon.waitForLine((line) => line.includes('"msg":"record: handling"'));
  daemon.signal("SIGTERM");
  await waitFor(async () => (await getJson(`${base}/ready`)).status === 503, {
    message: "/ready 503 while draining",
  });
  const stats = await getJson(`${base}/stats`);
  assert.equal(stats.body.draining, true);
  assert.ok((stats.body.reasons as string[]).includes("draining: the daemon is shutting down"));

  assert.equal((await daemon.status).code, 0);
  assert.equal((await dir.readLines("out.txt")).length, 1, "the slow message finished");
  await assert.rejects(fetch(`${base}/ping`), "nothing listens once the daemon exited");
});

Deno.test("nsqworker run: an http.listen port in use fails the start with exit 1", async () => {
  await using dir = await TempDir.create();
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: ["127.0.0.1:1"] },
    http: { listen: `127.0.0.1:${taken.addr.port}` },
    workers: [{ topic: "t", channel: "c", worker: "record", options: { out: dir.join("o") } }],
  });
  const { code } = await daemon.status;
  assert.equal(code, 1);
  assert.match(
    daemon.stderr.join("\n"),
    new RegExp(
      `^nsqworker: cannot listen on 127\\.0\\.0\\.1:${taken.addr.port} \\(http\\.listen\\): `,
    ),
  );
  assert.ok(
    !daemon.stdout.some((line) => line.includes('"msg":"started"')),
    "no entry was started",
  );
});

Deno.test("/stats and /metrics are rendered at most once per renderMaxAgeMs; pause renders afresh", async () => {
  let snapshots = 0;
  let paused = false;
  const handler = createHandler({
    readiness: () => ({ ready: true, reasons: [] }),
    snapshot: () => {
      snapshots++;
      return fakeSnapshot([fakeEntry()]);
    },
    pause: () => {
      paused = true;
      return null;
    },
    resume: () => null,
    token: TOKEN,
    renderMaxAgeMs: 60_000,
  });
  const get = async (path: string) => (await handler(new Request(`http://x${path}`))).text();
  const first = await get("/stats");
  for (let i = 0; i < 100; i++) assert.equal(await get("/stats"), first);
  assert.equal(snapshots, 1, "one rendering for 101 requests");
  await get("/metrics");
  await get("/metrics");
  assert.equal(snapshots, 2, "/metrics has its own rendering");
  await handler(
    new Request("http://x/entries/t/c/pause", {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    }),
  );
  assert.ok(paused);
  await get("/stats");
  assert.equal(snapshots, 3, "a pause is seen at once");
});
