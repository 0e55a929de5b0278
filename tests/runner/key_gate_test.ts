/**
 * `key_concurrency` in one daemon, against a real nsqd: one key's handlers
 * never overlap and run in the order the daemon received them; a message
 * waiting for its key is TOUCHed past nsqd's message timeout and does not
 * fail; and `check` refuses `key_concurrency` without an `orderKey`.
 */
import assert from "node:assert/strict";
import { KeyGate } from "../../src/runner/key_gate.ts";
import type { Outcome } from "../../src/runner/outcome.ts";
import { runCli, TempDir } from "../helpers/daemon_process.ts";
import { deferred, oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const CHANNEL = "work";

interface Run {
  readonly key: string;
  readonly seq: number;
  readonly start: number;
  end: number;
}

Deno.test("key_concurrency 1: 2,000 messages over 20 keys, each key's handlers one at a time, in the order received", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("keys");
  // One nsqd, one connection, no requeue: the daemon receives them in the order published.
  const bodies = Array.from({ length: 2_000 }, (_, seq) => `k${seq % 20} ${seq}`);
  await nsq.publishMany(topic, bodies);
  const runs: Run[] = [];
  await using daemon = await startInProcess({
    yaml: oneEntryYaml(nsq.nsqds[0]!.tcpAddress, topic, "max_in_flight: 50, key_concurrency: 1"),
    workers: {
      "test/worker": {
        decode: "text",
        orderKey: (body: string) => body.split(" ")[0],
        async handle(body: string) {
          const [key, seq] = body.split(" ");
          const run: Run = { key: key!, seq: Number(seq), start: performance.now(), end: NaN };
          runs.push(run);
          // 0 to 2 ms: handlers of one key would overlap, and finish out of order, if let.
          await new Promise((resolve) => setTimeout(resolve, run.seq % 3));
          run.end = performance.now();
        },
      },
    },
    logLevel: "info",
  });
  const entry = daemon.supervisor.entries[0]!;
  await waitFor(() => entry.stats.snapshot().outcomes.finish === bodies.length, {
    timeoutMs: 30_000,
    message: "every message finished",
  });
  const byKey = Map.groupBy(runs, (run) => run.key);
  assert.equal(byKey.size, 20);
  let most = 0;
  for (const [key, keyRuns] of byKey) {
    assert.equal(keyRuns.length, 100, key);
    // In the order they started, which must be the order received (published).
    assert.deepEqual(
      keyRuns.map((run) => run.seq),
      keyRuns.map((run) => run.seq).toSorted((a, b) => a - b),
      `${key} ran in the order received`,
    );
    for (let i = 1; i < keyRuns.length; i++) {
      assert.ok(
        keyRuns[i]!.start >= keyRuns[i - 1]!.end,
        `${key}: ${keyRuns[i]!.seq} started before ${keyRuns[i - 1]!.seq} ended`,
      );
    }
  }
  // And the keys did run side by side: the limit is per key, not per entry.
  const events = runs.flatMap((run) => [[run.start, 1], [run.end, -1]] as const)
    .toSorted((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let running = 0, i = 0; i < events.length; i++) {
    running += events[i]![1];
    most = Math.max(most, running);
  }
  assert.ok(most > 1, `at most ${most} handlers ran at once`);
  const stats = entry.stats.snapshot();
  assert.equal(stats.outcomes.retry + stats.outcomes.busy + stats.outcomes.dead, 0);
  assert.equal(entry.consumer.inFlight, 0);
});

Deno.test("a message waiting for its key is TOUCHed past nsqd's message timeout, and is no failure", async () => {
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=1s"] });
  // nsqd times messages out only on channels its scan knows, which it learns every 5 s.
  const scannedFrom = performance.now() + 5_500;
  const topic = uniqueTopic("touched");
  await nsq.createChannel(topic, CHANNEL);
  await nsq.publishMany(topic, ["a 1", "a 2", "b 3"]);
  const release = deferred();
  const handled: string[] = [];
  await using daemon = await startInProcess({
    yaml: oneEntryYaml(nsq.nsqds[0]!.tcpAddress, topic, "key_concurrency: 1, timeout: 30s"),
    workers: {
      "test/worker": {
        decode: "text",
        orderKey: (body: string) => body.split(" ")[0],
        async handle(body: string) {
          handled.push(body);
          if (body === "a 1") await release.promise;
        },
      },
    },
    logLevel: "info",
  });
  await waitFor(() => handled.length === 2, { message: "a 1 and b 3 running or done" });
  assert.deepEqual(handled.toSorted(), ["a 1", "b 3"], "a 2 waits for a 1, b 3 does not");
  // Twice nsqd's message timeout once scanned: a 2 is TOUCHed while it waits, a 1 while it runs.
  await new Promise((resolve) => setTimeout(resolve, scannedFrom + 2_000 - performance.now()));
  const waiting = await nsq.channel(topic, CHANNEL);
  assert.equal(waiting?.in_flight_count, 2, "a 1 running and a 2 waiting, both in flight");
  release.resolve();
  const entry = daemon.supervisor.entries[0]!;
  await waitFor(() => entry.stats.snapshot().outcomes.finish === 3, { message: "all finished" });
  assert.deepEqual(handled, ["a 1", "b 3", "a 2"]);
  const channel = await nsq.channel(topic, CHANNEL);
  assert.equal(channel?.timeout_count, 0, "nsqd timed nothing out");
  assert.equal(channel?.requeue_count, 0, "nothing was requeued: waiting is not failing");
});

Deno.test("the key gate: no key runs at once; a throwing orderKey is dead; a stop ends the wait", async () => {
  const finish: Outcome = { kind: "finish", durationMs: 1 };
  const gate = new KeyGate({
    orderKey: (body) => {
      if (body === "boom") throw new Error("no key here");
      return body === null ? null : String(body);
    },
    limit: 1,
  });
  const message = {
    id: "0a1b2c3d4e5f6789",
    attempts: 1,
    timestamp: 0,
    body: new Uint8Array(),
    msgTimeoutMs: 60_000,
    touch() {},
  };
  assert.equal(gate.run(message, null, undefined, () => finish), finish, "no key: at once");
  assert.deepEqual(gate.run(message, "boom", undefined, () => finish), {
    kind: "dead",
    reason: "order_key",
    error: "orderKey threw: no key here",
    durationMs: null,
  });
  const first = deferred<Outcome>();
  const running = gate.run(message, "k", undefined, () => first.promise);
  const stop = new AbortController();
  const waiting = gate.run(message, "k", stop.signal, () => finish);
  assert.equal(gate.busyKeys, 1);
  stop.abort();
  assert.deepEqual(await waiting, { kind: "interrupted", durationMs: 0 });
  first.resolve(finish);
  assert.equal(await running, finish);
  assert.equal(gate.busyKeys, 0, "a key with nothing running or waiting is forgotten");
});

Deno.test("check refuses key_concurrency for a worker without orderKey, at file:line:col", async () => {
  await using dir = await TempDir.create();
  const path = await dir.writeConfig(`nsq:
  nsqd_tcp_addresses: [127.0.0.1:4150]
workers:
  - topic: t
    channel: c
    worker: record
    key_concurrency: 1
    options: { out: ${dir.join("out")} }
`);
  const { code, stderr } = await runCli(["check", "-c", path]);
  assert.equal(code, 2, stderr);
  assert.match(
    stderr,
    /config\.yaml:7:22: workers\[0\]\.key_concurrency needs an orderKey\(body, msg\) in the worker.*workers\/record\.ts has none/,
  );
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
});

Deno.test("check refuses key_concurrency with processes, at file:line:col", async () => {
  await using dir = await TempDir.create();
  const path = await dir.writeConfig(`nsq:
  nsqd_tcp_addresses: [127.0.0.1:4150]
workers:
  - topic: t
    channel: c
    worker: timed_ledger
    key_concurrency: 1
    processes: 1
`);
  const { code, stderr } = await runCli(["check", "-c", path]);
  assert.equal(code, 2, stderr);
  assert.match(
    stderr,
    /config\.yaml:7:22: workers\[0\]\.key_concurrency cannot be used with processes \(1\) yet/,
  );
});
