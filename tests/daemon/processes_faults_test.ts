/**
 * Entries with `processes` whose worker misbehaves, in a real daemon
 * process with real children against a real nsqd: a handler that never
 * yields, a child that exits, runs out of memory or is killed from
 * outside. The daemon stays up, the other entry keeps going, nothing is
 * lost, and each child that ended is replaced and told of.
 */

import assert from "node:assert/strict";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { envelope } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { childEntry, cpuTicks, daemonConfig, isJson, records } from "../helpers/processes.ts";

/** The restarts the daemon logged, as `{ reason, child_pid, … }`. */
function restarts(daemon: CliProcess, topic: string): Record<string, unknown>[] {
  return daemon.stdout.filter(isJson((r) => r.msg === "child process ended; starting another"))
    .map((line) => JSON.parse(line)).filter((record) => record.topic === topic);
}

/** Polls /ping every 50 ms until stopped; fails if one takes over 1 s or is not 200. */
function pingThroughout(address: string): { stop(): Promise<number> } {
  let stopped = false;
  const loop = (async () => {
    let pings = 0;
    while (!stopped) {
      const started = performance.now();
      const response = await fetch(`http://${address}/ping`, {
        signal: AbortSignal.timeout(1_000),
      });
      await response.body?.cancel();
      assert.equal(response.status, 200);
      assert.ok(performance.now() - started < 1_000, "/ping answered within 1 s");
      pings++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return pings;
  })();
  // Held until stop(): a failed ping fails the test there.
  loop.catch(() => {});
  return {
    stop() {
      stopped = true;
      return loop;
    },
  };
}

Deno.test("a runaway synchronous handler in a child: /ping answers, the other entry goes on, the child is killed, the message dead after max_attempts", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const [runaway, other] = [uniqueTopic("runaway"), uniqueTopic("other")];
  await nsq.createChannel(`${runaway}.dead`, "check");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsqd, [
      childEntry(runaway, {
        processes: 1,
        timeout: "1s",
        kill_grace: "200ms",
        max_attempts: 2,
        requeue_delay: "100ms",
      }),
      childEntry(other, { processes: 1 }),
    ]),
    { runSelf: true },
  );
  const { address } = JSON.parse(
    await daemon.waitForLine(isJson((r) => r.msg === "http listening")),
  );
  await daemon.waitForLines(isJson((r) => r.msg === "connected to nsqd"), 2);
  const pinging = pingThroughout(address);

  await nsq.publish(runaway, "spin");
  const bodies = Array.from({ length: 30 }, (_, i) => `sleep:${i % 5}`);
  const started = performance.now();
  for (const body of bodies) await nsq.publish(other, body);
  await waitFor(() => records(daemon).filter((r) => r.topic === other).length === bodies.length, {
    message: "the other entry handled all of its messages",
    timeoutMs: 5_000,
  });
  const otherMs = performance.now() - started;

  const [letter] = await nsq.readTopic(`${runaway}.dead`, 1, {
    channel: "check",
    timeoutMs: 15_000,
  });
  const dead = envelope(letter!);
  assert.equal(dead.reason, "max_attempts");
  assert.equal(dead.attempts, 2);
  assert.equal(dead.error, "handler timed out after 1000ms");
  await waitFor(() => restarts(daemon, runaway).length === 2, {
    message: "the child killed at each attempt, and replaced",
  });
  assert.deepEqual(restarts(daemon, runaway).map((r) => r.reason), [
    "timeout_kill",
    "timeout_kill",
  ]);

  // Nothing spins any more: the daemon and its children together use (almost) no CPU.
  const stats = await (await fetch(`http://${address}/stats`)).json();
  const children: number[] = stats.entries.flatMap((e: { children: { pid: number }[] }) =>
    e.children.map((child) => child.pid)
  );
  assert.equal(children.length, 2);
  const killedPids = restarts(daemon, runaway).map((r) => Number(r.child_pid));
  for (const pid of killedPids) assert.equal(await cpuTicks(pid), null, `child ${pid} is gone`);
  const tree = [daemon.pid, ...children];
  const before = await Promise.all(tree.map(cpuTicks));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const after = await Promise.all(tree.map(cpuTicks));
  const used = after.reduce((sum: number, ticks, i) => sum + (ticks ?? 0) - (before[i] ?? 0), 0);
  assert.ok(used <= 15, `the process tree used ${used} clock ticks in 1 s (one spinning: ~100)`);

  const pings = await pinging.stop();
  assert.ok(pings >= 20, `/ping answered throughout (${pings} times)`);
  assert.ok(otherMs < 5_000, `the other entry took ${Math.round(otherMs)} ms`);
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

Deno.test("a child that exits mid-handler, runs past memory_limit or is killed from outside: its messages requeued at once, nothing lost, a replacement logged with the reason", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const [exits, oom, killed] = [uniqueTopic("exits"), uniqueTopic("oom"), uniqueTopic("killed")];
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  // A requeue with backoff would hold a message back for 60 s or more: only
  // a requeue at once brings it back within the test's waits.
  const slow = { requeue_delay: "60s", max_attempts: 2 };
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsqd, [
      childEntry(exits, { processes: 1, ...slow }),
      childEntry(oom, { processes: 1, memory_limit: "64MiB", ...slow }),
      childEntry(killed, { processes: 1, ...slow }),
    ]),
    { runSelf: true },
  );
  const { address } = JSON.parse(
    await daemon.waitForLine(isJson((r) => r.msg === "http listening")),
  );
  await daemon.waitForLines(isJson((r) => r.msg === "connected to nsqd"), 3);
  const inFlight = async (topic: string) => {
    const stats = await (await fetch(`http://${address}/stats`)).json();
    const entry = stats.entries.find((e: { topic: string }) => e.topic === topic);
    return entry.children[0] as { pid: number; in_flight: number; restarts: number };
  };

  // Bystanders in flight in the same child as the fault.
  const bystanders = Array.from({ length: 3 }, (_, i) => `sleep:${1500 + i}`);
  for (const topic of [exits, oom, killed]) await nsq.publishMany(topic, bystanders);
  for (const topic of [exits, oom, killed]) {
    await waitFor(async () => (await inFlight(topic)).in_flight === 3, {
      message: `three messages in ${topic}'s child`,
    });
  }
  await nsq.publish(exits, "exit-once");
  await nsq.publish(oom, "oom-once");
  const victim = (await inFlight(killed)).pid;
  Deno.kill(victim, "SIGKILL");

  const expected: Record<string, number> = { [exits]: 4, [oom]: 4, [killed]: 3 };
  for (const topic of [exits, oom, killed]) {
    await waitFor(
      () => records(daemon).filter((r) => r.topic === topic).length === expected[topic],
      {
        message: `every message of ${topic} handled by the replacement`,
        timeoutMs: 15_000,
      },
    );
    const handled = records(daemon).filter((r) => r.topic === topic);
    assert.deepEqual(
      handled.map((r) => r.attempts),
      handled.map(() => 2),
      `${topic}: second attempts`,
    );
  }
  assert.deepEqual(restarts(daemon, killed).map((r) => [r.reason, r.child_pid]), [[
    "killed",
    victim,
  ]]);
  assert.deepEqual(restarts(daemon, exits).map((r) => r.reason), ["exit"]);
  assert.deepEqual(restarts(daemon, oom).map((r) => r.reason), ["memory"]);
  const requeued = daemon.stdout.filter(
    isJson((r) =>
      r.msg === "handler failed; requeued for a retry" && r.delay_ms === 0 &&
      /^HandlerLost: the child process \d+ ended \((exit|memory|killed), /.test(String(r.error))
    ),
  );
  assert.equal(requeued.length, 11, "each message of a child that ended requeued at once");
  const metrics = await (await fetch(`http://${address}/metrics`)).text();
  assert.match(
    metrics,
    new RegExp(
      `nsqworker_child_restarts_total\\{topic="${killed}",channel="work",reason="killed"\\} 1`,
    ),
  );
  assert.match(
    metrics,
    new RegExp(
      `nsqworker_child_restarts_total\\{topic="${oom}",channel="work",reason="memory"\\} 1`,
    ),
  );
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});
