/**
 * `nsqworker run` as a process against a real nsqd: shutdown on signals, the
 * JSON log stream, and entries that fail alone. The daemon runs the fixture
 * workers of tests/fixtures/workers/ and is watched through its log lines and
 * nsqd's channel stats.
 */
import assert from "node:assert/strict";
import { type CliProcess, spawnCli, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import type { ChannelStats } from "../helpers/nsq/nsqd_stats.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const CHANNEL = "worker";
const OUT = "out.txt";

interface LogRecord {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

function parseLog(line: string): LogRecord | null {
  try {
    const value = JSON.parse(line);
    return typeof value === "object" && value !== null ? value as LogRecord : null;
  } catch {
    return null;
  }
}

/** A line predicate: a JSON log record with this `msg` (and these fields). */
function logged(msg: string, fields: Record<string, unknown> = {}): (line: string) => boolean {
  return (line) => {
    const record = parseLog(line);
    return record?.msg === msg &&
      Object.entries(fields).every(([key, value]) => record[key] === value);
  };
}

function records(daemon: CliProcess, msg: string): LogRecord[] {
  return daemon.stdout.map(parseLog).filter((record) => record?.msg === msg) as LogRecord[];
}

/** One entry consuming `topic` straight from the cluster's nsqd, with JSON logs. */
function daemonConfig(
  nsq: NsqCluster,
  workers: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: null },
    shutdown_timeout: "10s",
    workers,
    ...extra,
  };
}

function recordEntry(
  dir: TempDir,
  topic: string,
  settings: Record<string, unknown>,
  options: Record<string, unknown>,
): Record<string, unknown> {
  return {
    topic,
    channel: CHANNEL,
    worker: "record",
    ...settings,
    options: { out: dir.join(OUT), ...options },
  };
}

/** The channel once nsqd holds nothing in flight for it (every FIN/REQ processed). */
async function settledChannel(nsq: NsqCluster, topic: string): Promise<ChannelStats> {
  let channel: ChannelStats | null = null;
  await waitFor(async () => {
    channel = await nsq.channel(topic, CHANNEL);
    return channel !== null && channel.in_flight_count === 0;
  }, { timeoutMs: 5_000, message: `nothing in flight on ${topic}/${CHANNEL}` });
  return channel!;
}

function counters(channel: ChannelStats) {
  const { depth, in_flight_count, deferred_count, requeue_count, timeout_count, message_count } =
    channel;
  return { depth, in_flight_count, deferred_count, requeue_count, timeout_count, message_count };
}

/** Sends `signal` and returns the exit code and how long the exit took. */
async function signalAndWait(
  daemon: CliProcess,
  signal: Deno.Signal,
): Promise<{ code: number; ms: number }> {
  const sent = performance.now();
  daemon.signal(signal);
  const { code } = await daemon.status;
  return { code, ms: performance.now() - sent };
}

const bodies = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, i) => `${prefix}${i}`);

Deno.test("SIGTERM lets in-flight handlers finish: each message handled once, none requeued", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("drain");
  const sent = bodies(20, "m");
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsq, [recordEntry(dir, topic, { max_in_flight: 20 }, { sleep_ms: 1500 })]),
  );
  await daemon.waitForLine(logged("connected to nsqd"));
  await nsq.publishMany(topic, sent);
  await daemon.waitForLines(logged("record: handling"), 20);
  await waitFor(async () => (await nsq.channel(topic, CHANNEL))?.in_flight_count === 20, {
    message: "20 messages in flight",
  });

  const { code } = await signalAndWait(daemon, "SIGTERM");

  assert.equal(code, 0);
  const handled = (await dir.readLines(OUT)).map((line) => line.split(" "));
  assert.deepEqual(handled.map(([, , body]) => body).sort(), [...sent].sort());
  assert.equal(new Set(handled.map(([id]) => id)).size, 20);
  assert.ok(handled.every(([, attempts]) => attempts === "1"));
  assert.deepEqual(counters(await settledChannel(nsq, topic)), {
    depth: 0,
    in_flight_count: 0,
    deferred_count: 0,
    requeue_count: 0,
    timeout_count: 0,
    message_count: 20,
  });
  const msgs = daemon.stdout.map((line) => parseLog(line)?.msg);
  assert.ok(msgs.indexOf("signal received: draining") < msgs.indexOf("stopped"));
});

for (const honourSignal of [true, false]) {
  const handler = honourSignal ? "honours ctx.signal" : "ignores ctx.signal";
  Deno.test(`shutdown_timeout aborts a handler that ${handler} and REQs its messages`, async () => {
    await using nsq = await startNsq();
    await using dir = await TempDir.create();
    const topic = uniqueTopic("abort");
    const sent = bodies(5, "slow");
    await using daemon = await startDaemon(
      dir,
      daemonConfig(
        nsq,
        [recordEntry(dir, topic, { max_in_flight: 5, timeout: "5m" }, {
          sleep_ms: 60_000,
          honour_signal: honourSignal,
        })],
        { shutdown_timeout: "500ms" },
      ),
    );
    await daemon.waitForLine(logged("connected to nsqd"));
    await nsq.publishMany(topic, sent);
    await daemon.waitForLines(logged("record: handling"), 5);

    const { code, ms } = await signalAndWait(daemon, "SIGTERM");

    assert.equal(code, 0);
    assert.ok(ms < 4_000, `exit took ${ms} ms`);
    assert.equal(records(daemon, "interrupted by shutdown; requeued").length, 5);
    assert.deepEqual(await dir.readLines(OUT), []);
    assert.deepEqual(counters(await settledChannel(nsq, topic)), {
      depth: 5,
      in_flight_count: 0,
      deferred_count: 0,
      requeue_count: 5,
      timeout_count: 0,
      message_count: 5,
    });
    // The next consumer of the channel gets them all.
    const redelivered = await nsq.readTopic(topic, 5, { channel: CHANNEL, timeoutMs: 5_000 });
    assert.deepEqual(redelivered.map((body) => new TextDecoder().decode(body)).sort(), sent);
  });
}

Deno.test("a second SIGTERM during the drain exits at once", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("twice");
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsq, [recordEntry(dir, topic, { max_in_flight: 3 }, { sleep_ms: 60_000 })], {
      shutdown_timeout: "30s",
    }),
  );
  await daemon.waitForLine(logged("connected to nsqd"));
  await nsq.publishMany(topic, bodies(3, "stuck"));
  await daemon.waitForLines(logged("record: handling"), 3);
  daemon.signal("SIGTERM");
  await daemon.waitForLine(logged("signal received: draining"));

  const { code, ms } = await signalAndWait(daemon, "SIGTERM");

  assert.notEqual(code, 0);
  assert.ok(ms < 2_000, `exit took ${ms} ms`);
  assert.ok(daemon.stdout.some(logged("second signal: exiting now")));
  assert.deepEqual(await dir.readLines(OUT), []);
});

Deno.test("json logs: stdout has only JSON records, stderr nothing, through finish, retry and dead", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const topic = uniqueTopic("json");
  const good = bodies(6, "ok");
  const bad = ["bad0", "bad1"];
  await using daemon = await startDaemon(
    dir,
    daemonConfig(
      nsq,
      [recordEntry(dir, topic, {
        max_in_flight: 10,
        max_attempts: 2,
        // Not a few ms: nsqd only picks up a new channel's deferred messages at its
        // next queue scan refresh, every 5 s; REQ 0 goes straight back to the queue.
        requeue_delay: "0ms",
      }, { fail_bodies: bad })],
      { log: { level: "debug", format: "json" } },
    ),
  );
  await daemon.waitForLine(logged("connected to nsqd"));
  await nsq.publishMany(topic, [...good, ...bad]);
  await daemon.waitForLines(logged("dead; sent to the dead letter topic"), 2);
  await waitFor(async () => (await dir.readLines(OUT)).length === good.length, {
    message: "every good message handled",
  });

  const { code } = await signalAndWait(daemon, "SIGTERM");

  assert.equal(code, 0);
  assert.deepEqual(daemon.stderr, []);
  assert.ok(daemon.stdout.length > 0);
  for (const line of daemon.stdout) {
    const record = parseLog(line);
    assert.ok(record, `not a JSON object: ${line}`);
    assert.equal(typeof record.msg, "string", line);
    assert.ok(["debug", "info", "warning", "error"].includes(record.level), line);
    assert.ok(!Number.isNaN(Date.parse(record.time)), line);
  }
  const finished = records(daemon, "finished");
  assert.equal(finished.length, good.length);
  assert.ok(finished.every((r) => r.level === "debug" && r.outcome === "finish"));
  const retried = records(daemon, "handler failed; requeued for a retry");
  assert.equal(retried.length, bad.length);
  assert.ok(retried.every((r) => r.level === "warning" && r.attempts === 1 && r.topic === topic));
  const dead = records(daemon, "dead; sent to the dead letter topic");
  assert.ok(dead.every((r) => r.level === "error" && r.attempts === 2));
  assert.ok(dead.every((r) => r.reason === "max_attempts" && r.channel === CHANNEL));
  assert.ok(dead.every((r) => String(r.error).includes("on purpose")));

  const letters = await nsq.readTopic(`${topic}.dead`, bad.length, { timeoutMs: 5_000 });
  const envelopes = letters.map((bytes) => JSON.parse(new TextDecoder().decode(bytes)));
  assert.deepEqual(envelopes.map((e) => e.body).sort(), bad);
  assert.ok(envelopes.every((e) => e.topic === topic && e.reason === "max_attempts"));
  assert.deepEqual(counters(await settledChannel(nsq, topic)), {
    depth: 0,
    in_flight_count: 0,
    deferred_count: 0,
    requeue_count: bad.length,
    timeout_count: 0,
    message_count: good.length + bad.length,
  });
});

Deno.test("an entry whose setup() throws does not stop the others, and the log says why", async () => {
  await using nsq = await startNsq();
  await using dir = await TempDir.create();
  const broken = uniqueTopic("broken");
  const topic = uniqueTopic("works");
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsq, [
      { topic: broken, channel: CHANNEL, worker: "broken_setup" },
      recordEntry(dir, topic, {}, {}),
    ]),
  );
  const failure = parseLog(await daemon.waitForLine(logged("entry not started")))!;
  assert.equal(failure.level, "error");
  assert.equal(failure.topic, broken);
  assert.equal(failure.worker, "broken_setup");
  assert.match(String(failure.error), /setup\(\) failed: .*refusing to start on purpose/);
  const started = parseLog(await daemon.waitForLine(logged("started")))!;
  assert.equal(started.failed, 1);

  await daemon.waitForLine(logged("connected to nsqd", { topic }));
  await nsq.publishMany(topic, ["a", "b", "c"]);
  await waitFor(async () => (await dir.readLines(OUT)).length === 3, {
    message: "the healthy entry to handle its messages",
  });

  const { code } = await signalAndWait(daemon, "SIGTERM");

  assert.equal(code, 0);
  assert.equal(await nsq.topic(broken), null, "the failed entry never subscribed");
});

// tools/compile.ts grants --allow-sys=hostname because nsqjs puts the host name
// in IDENTIFY; without it nsqjs's os.hostname() throws inside the socket's
// connect callback and the consumer hangs there, logging nothing.
for (const sysHostname of [true, false]) {
  const flag = sysHostname ? "with" : "without";
  Deno.test(`main.ts run consumes with workers/demo/pageview ${flag} --allow-sys=hostname`, async () => {
    await using nsq = await startNsq();
    await using dir = await TempDir.create();
    const topic = uniqueTopic("demo");
    const config = await dir.writeConfig(
      daemonConfig(nsq, [{ topic, channel: CHANNEL, worker: "demo/pageview" }]),
    );
    // No write permission: the daemon needs none with the memory dedupe store.
    await using daemon = spawnCli(["run", "-c", config], {
      entry: "main",
      cwd: dir.path,
      sysHostname,
    });
    await daemon.waitForLine(logged("connected to nsqd"), { timeoutMs: 5_000 });
    await nsq.publish(topic, JSON.stringify({ event_id: "e1", clicks: 2 }));
    const pageview = parseLog(await daemon.waitForLine(logged("pageview")))!;
    assert.equal(pageview.clicks, 2);

    const { code } = await signalAndWait(daemon, "SIGTERM");

    assert.equal(code, 0);
    assert.deepEqual(daemon.stderr, []);
    assert.ok(daemon.stdout.every((line) => parseLog(line) !== null), daemon.stdout.join("\n"));
  });
}
