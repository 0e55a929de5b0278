/**
 * Secrets stay secret: `nsq.auth_secret`, `http.token` and a redis
 * password planted in a config never appear in log lines (debug level
 * included), `list` or `check` output, config errors, `/stats`, `/metrics`
 * or any HTTP answer.
 *
 * The run authenticates for real: nsqd is started with
 * `--auth-http-address` pointing at an auth server in this test, which
 * grants access only to the planted secret, so the daemon's consumer and
 * publisher must send it on the wire (and nowhere else).
 */

import assert from "node:assert/strict";
import { main } from "../../src/cli/cli.ts";
import { ConfigError } from "../../src/config/config_error.ts";
import { loadConfig } from "../../src/config/load.ts";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

/** Random, so that a match can only come from a leak. */
function plant(label: string): string {
  return `${label}${crypto.randomUUID().replaceAll("-", "")}`;
}

/** Fails naming the secret's label and where it showed up, without printing the whole text. */
function assertAbsent(secrets: Record<string, string>, where: string, text: string): void {
  for (const [label, secret] of Object.entries(secrets)) {
    const at = text.indexOf(secret);
    assert.equal(
      at,
      -1,
      `${label} leaked into ${where}: …${text.slice(Math.max(0, at - 120), at + 40)}…`,
    );
  }
}

/** An nsqd auth server (GET /auth?secret=…) that authorizes only `secret`. */
function startAuthServer(secret: string) {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const given = new URL(request.url).searchParams.get("secret") ?? "";
    seen.push(given);
    if (given !== secret) return new Response("forbidden", { status: 403 });
    return Response.json({
      ttl: 3600,
      identity: "nsqworker-test",
      identity_url: "",
      authorizations: [{ permissions: ["subscribe", "publish"], topic: ".*", channels: [".*"] }],
    });
  });
  return { server, seen, address: `127.0.0.1:${server.addr.port}` };
}

Deno.test("no secret in the logs, /stats, /metrics or HTTP answers of a run with AUTH, retries and dead letters", async () => {
  const secrets = { auth_secret: plant("nsqauth"), token: plant("httptoken") };
  const auth = startAuthServer(secrets.auth_secret);
  await using _auth = auth.server;
  await using nsq = await startNsq({
    lookupd: false,
    nsqdArgs: [`--auth-http-address=${auth.address}`],
  });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("secrets");
  const config = `
nsq:
  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]
  auth_secret: \${NSQ_AUTH_SECRET}
defaults:
  max_attempts: 2
  requeue_delay: 0ms
  max_requeue_delay: 0ms
log: { level: debug, format: json }
http:
  listen: 127.0.0.1:0
  token: \${NSQWORKER_TOKEN}
shutdown_timeout: 5s
workers:
  - topic: ${topic}
    channel: work
    worker: record
    options: { out: ${JSON.stringify(dir.join("out.txt"))}, fail_bodies: [bad] }
`;
  await using daemon = await startDaemon(dir, config, {
    env: { NSQ_AUTH_SECRET: secrets.auth_secret, NSQWORKER_TOKEN: secrets.token },
  });
  const listening = JSON.parse(
    await daemon.waitForLine((line) => line.includes('"msg":"http listening"')),
  );
  const base = `http://${listening.address}`;
  const answers: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${base}${path}`, init);
    const body = await response.text();
    answers.push(`${init.method ?? "GET"} ${path} → ${response.status}`);
    for (const [name, value] of response.headers) answers.push(`${name}: ${value}`);
    answers.push(body);
    return { status: response.status, body };
  };
  await waitFor(async () => (await call("/ready")).status === 200, {
    message: "connected to nsqd through AUTH",
  });

  await nsq.publishMany(topic, ["good-1", "good-2", "bad"]);
  const outcomes = async () => JSON.parse((await call("/stats")).body).entries[0].outcomes;
  await waitFor(async () => {
    const counts = await outcomes();
    return counts.finish === 2 && counts.dead === 1;
  }, { message: "2 finished, 1 dead-lettered" });
  await waitFor(async () => (await nsq.topic(`${topic}.dead`))?.message_count === 1, {
    message: "the dead letter published (through AUTH) to nsqd",
  });
  assert.equal((await outcomes()).retry, 1);
  const metrics = await call("/metrics");
  assert.match(metrics.body, /outcome="dead"\} 1$/m);
  const pause = `/entries/${topic}/work/pause`;
  assert.equal((await call(pause, { method: "POST" })).status, 401);
  const wrong = { Authorization: `Bearer ${secrets.token.slice(0, -1)}x` };
  assert.equal((await call(pause, { method: "POST", headers: wrong })).status, 401);
  const right = { Authorization: `Bearer ${secrets.token}` };
  assert.equal((await call(pause, { method: "POST", headers: right })).status, 200);
  const resume = `/entries/${topic}/work/resume`;
  assert.equal((await call(resume, { method: "POST", headers: right })).status, 200);
  assert.equal((await call("/nope", { headers: right })).status, 404);

  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);

  // The secret did reach nsqd (the consumer and the dead letter publisher).
  assert.ok(
    auth.seen.filter((s) => s === secrets.auth_secret).length >= 2,
    `AUTH from both connections: ${auth.seen.length}`,
  );
  const logs = daemon.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
  const messages = new Set(logs.map((record) => record.msg));
  for (
    const msg of [
      "http listening",
      "connected to nsqd",
      "finished",
      "handler failed; requeued for a retry",
      "dead; sent to the dead letter topic",
      "entry paused over HTTP",
      "stopped",
    ]
  ) {
    assert.ok(messages.has(msg), `the run logged "${msg}"`);
  }
  assert.ok(logs.some((record) => record.level === "debug"), "debug lines were written");
  assertAbsent(secrets, "stdout (every log line)", daemon.stdout.join("\n"));
  assertAbsent(secrets, "stderr", daemon.stderr.join("\n"));
  assertAbsent(secrets, "the HTTP answers (status, headers, bodies)", answers.join("\n"));
});

Deno.test("auth_secret against an nsqd without auth: not sent, the connection works", async () => {
  const secret = plant("nsqauth");
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("noauth");
  let handled = 0;
  await using daemon = await startInProcess({
    yaml: `
nsq:
  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]
  auth_secret: ${secret}
workers:
  - { topic: ${topic}, channel: work, worker: w }
`,
    workers: { w: { handle: () => void handled++ } },
  });
  // nsqjs would send AUTH whenever a secret is set, and this nsqd would answer
  // E_AUTH_DISABLED and close the connection; AUTH goes only where it is asked for.
  await nsq.publish(topic, "{}");
  await waitFor(() => handled === 1);
  assert.equal(daemon.supervisor.readiness().ready, true);
  assert.equal(daemon.logs.filter((r) => r.msg === "nsqd connection lost; reconnecting").length, 0);
  await daemon.shutdown();
  assertAbsent({ auth_secret: secret }, "the log", JSON.stringify(daemon.logs));
});

/** A config with every secret the config can hold, written as literal values. */
function secretConfig(secrets: { auth: string; token: string; redis: string }, db = "0"): string {
  return `
nsq:
  nsqd_tcp_addresses: [127.0.0.1:4150]
  auth_secret: ${secrets.auth}
dedupe:
  store: redis://worker:${secrets.redis}@127.0.0.1:6379/${db}
http:
  listen: 0.0.0.0:4190
  token: ${secrets.token}
workers:
  - { topic: pageviews, channel: counter, worker: demo/pageview, options: { label: x } }
`;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { out: (text) => out += text, err: (text) => err += text });
  return { code, out, err };
}

Deno.test("list and check print no secret; the parsed config keeps them for the daemon", async () => {
  const secrets = { auth: plant("nsqauth"), token: plant("httptoken"), redis: plant("redispw") };
  await using dir = await TempDir.create();
  const path = await dir.writeConfig(secretConfig(secrets));

  const list = await cli(["list", "-c", path]);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^pageviews\/counter → demo\/pageview$/m);
  assertAbsent(secrets, "list", list.out + list.err);

  const check = await cli(["check", "-c", path]);
  assert.equal(check.code, 0, check.err);
  assertAbsent(secrets, "check", check.out + check.err);

  // The same values through ${VAR}: they reach the config, where the daemon needs them.
  const config = await loadConfig(
    await dir.writeConfig(secretConfig({ auth: "${A}", token: "${T}", redis: "${R}" }), "env.yaml"),
    { A: secrets.auth, T: secrets.token, R: secrets.redis },
  );
  assert.equal(config.nsq.authSecret, secrets.auth);
  assert.equal(config.http.token, secrets.token);
  assert.ok(
    config.dedupe.store.kind === "redis" && config.dedupe.store.url.includes(secrets.redis),
  );
});

Deno.test("config errors never quote a secret", async () => {
  const secrets = { auth: plant("nsqauth"), token: plant("httptoken"), redis: plant("redispw") };
  await using dir = await TempDir.create();
  // An invalid redis DB, and a bad value beside each secret.
  const text = secretConfig(secrets, "99")
    .replace("  auth_secret:", "  compression: brotli\n  auth_secret:")
    .replace("  token:", "  token_x: 1\n  token:");
  const path = await dir.writeConfig(text);
  for (const command of ["list", "check", "run"]) {
    const result = await cli([command, "-c", path]);
    assert.equal(result.code, 2, `${command}: ${result.err}`);
    assert.match(result.err, /redis URL like redis:\/\/HOST:PORT\/DB \(DB is a number/);
    assert.match(result.err, /redis:\/\/worker:\*\*\*@127\.0\.0\.1:6379\/99/);
    assertAbsent(secrets, `${command}'s error output`, result.out + result.err);
  }
  // Secrets of the wrong type are described by their type only.
  const wrongType = await dir.writeConfig(
    "nsq: {nsqd_tcp_addresses: [127.0.0.1:4150], auth_secret: [s3cr3tvalue]}\n" +
      "workers: [{topic: t, channel: c, worker: w}]\n",
    "wrong_type.yaml",
  );
  await assert.rejects(
    loadConfig(wrongType, {}),
    (error: unknown) =>
      error instanceof ConfigError && !error.message.includes("s3cr3tvalue") &&
      /auth_secret must be/.test(error.message),
  );
});
