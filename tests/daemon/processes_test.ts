/**
 * Entries with `processes`, in a real daemon process against a real nsqd:
 * work spread over the children, publishing from a child, a child's
 * figures in /stats and /metrics.
 */

import assert from "node:assert/strict";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { childEntry, daemonConfig, isJson, records } from "../helpers/processes.ts";

Deno.test("processes: 2: both children handle messages, a child's publish reaches nsqd, /stats lists each child", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("procs");
  const published = uniqueTopic("procs_out");
  await nsq.createChannel(published, "check");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsqd, [childEntry(topic, { processes: 2, max_in_flight: 4 })]),
    { runSelf: true },
  );
  const listening = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "http listening")));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));

  const bodies = Array.from({ length: 40 }, (_, i) => `sleep:${20 + (i % 3)}`);
  await nsq.publishMany(topic, [...bodies, `publish:${published}`]);
  await waitFor(() => records(daemon).length === bodies.length + 1, {
    message: "every message handled",
  });
  const handled = records(daemon);
  const pids = new Set(handled.map((record) => record.pid));
  assert.equal(pids.size, 2, `two children handled the messages, got ${[...pids]}`);
  assert.ok(!pids.has(daemon.pid), "not the daemon itself");

  const [letter] = await nsq.readTopic(published, 1, { channel: "check", timeoutMs: 10_000 });
  const from = JSON.parse(new TextDecoder().decode(letter)).from;
  assert.ok(pids.has(from), `published from a child (${from})`);

  const stats = await (await fetch(`http://${listening.address}/stats`)).json();
  const children = stats.entries[0].children as Record<string, number>[];
  assert.deepEqual(
    children.map((child) => child.pid).sort(),
    [...pids].sort(),
  );
  for (const child of children) {
    assert.equal(child.restarts, 0);
    assert.equal(child.in_flight, 0);
    assert.ok(child.rss_bytes! > 1_000_000, `rss of a child: ${child.rss_bytes}`);
  }
  const metrics = await (await fetch(`http://${listening.address}/metrics`)).text();
  assert.match(
    metrics,
    new RegExp(
      `nsqworker_child_restarts_total\\{topic="${topic}",channel="work",reason="crash"\\} 0`,
    ),
  );
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

Deno.test("SIGTERM with handlers running in children: they finish, teardown runs in each child, the daemon exits 0", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("procs_drain");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsqd, [childEntry(topic, { processes: 2 })]),
    { runSelf: true },
  );
  const listening = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "http listening")));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));
  const bodies = Array.from({ length: 4 }, (_, i) => `sleep:${1_000 + i}`);
  await nsq.publishMany(topic, bodies);
  await waitFor(async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    const children = stats.entries[0].children as { in_flight: number }[];
    return children.every((child) => child.in_flight === 2);
  }, { message: "two handlers running in each child" });
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  assert.deepEqual(records(daemon).map((r) => r.body).sort(), bodies);
  const teardowns = daemon.stdout.filter(
    isJson((r) => r.msg === "child stderr" && r.line === "teardown"),
  )
    .map((line) => JSON.parse(line).child_pid);
  assert.equal(new Set(teardowns).size, 2, "teardown ran in each child");
  assert.deepEqual((await nsq.channel(topic, "work"))?.depth, 0);
});

Deno.test("reload from processes 1 to 3 and back: the entry restarts with that many children, nothing lost", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("procs_reload");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  const config = (processes: number) => daemonConfig(nsqd, [childEntry(topic, { processes })]);
  await using daemon = await startDaemon(dir, config(1), { runSelf: true });
  const listening = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "http listening")));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));
  const children = async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    const entry = stats.entries[0];
    if (entry.state !== "running") return -1;
    // Children that run: each has a process of its own.
    const pids = (entry.children as { pid: number | null }[]).map((child) => child.pid);
    return pids.includes(null) ? -1 : new Set(pids).size;
  };
  const seenPids = new Set<number>();
  const notePids = async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    for (const child of stats.entries[0].children as { pid: number }[]) seenPids.add(child.pid);
  };
  let sent = 0;
  const publishSome = async () => {
    const bodies = Array.from({ length: 20 }, () => `sleep:${sent++ % 7}`);
    await nsq.publishMany(topic, bodies);
  };
  await publishSome();
  // The entry's child starts after the connection: wait for it, not just read once.
  await waitFor(async () => (await children()) === 1, { message: "1 child at the start" });
  for (const [processes, reloads] of [[3, 1], [1, 2]]) {
    await publishSome();
    await dir.writeConfig(config(processes!));
    daemon.signal("SIGHUP");
    await daemon.waitForLines(isJson((r) => r.msg === "reloaded"), reloads!);
    await waitFor(async () => (await children()) === processes, {
      message: `${processes} children after the reload`,
    });
    await notePids();
    await publishSome();
  }
  await waitFor(() => new Set(records(daemon).map((r) => r.id)).size === sent, {
    message: "every message handled",
  });
  // 3 processes of the middle config, then 1 new one: each reload started its own children.
  assert.equal(seenPids.size, 4, `children seen: ${[...seenPids].join(", ")}`);
  const pids = new Set(records(daemon).map((r) => r.pid));
  assert.ok(pids.size >= 2, `handled by the first child and later ones (${pids.size} pids)`);
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

Deno.test("processes without the permission to run the program again: one line and exit 2", async () => {
  await using dir = await TempDir.create();
  await using daemon = await startDaemon(
    dir,
    daemonConfig("127.0.0.1:4150", [childEntry("nothing", { processes: 1 })]),
  );
  const status = await daemon.status;
  assert.equal(status.code, 2);
  assert.equal(daemon.stderr.length, 1, daemon.stderr.join("\n"));
  assert.match(
    daemon.stderr[0]!,
    /^nsqworker run: missing permission --allow-run=\S+: nothing\/work has processes: 1,/,
  );
});

Deno.test("a batch worker with processes: 2: batches of one child's messages run in that child, each item its own outcome", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("procs_batch");
  await nsq.createChannel(`${topic}.dead`, "check");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(
    dir,
    daemonConfig(nsqd, [{
      topic,
      channel: "work",
      worker: "child_batch",
      processes: 2,
      max_in_flight: 10,
      batch: { size: 5, wait: "100ms" },
    }]),
    { runSelf: true },
  );
  const listening = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "http listening")));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));
  const bodies = [...Array.from({ length: 29 }, (_, i) => `item ${i}`), "permanent"];
  await nsq.publishMany(topic, bodies);
  const [letter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
  const dead = JSON.parse(new TextDecoder().decode(letter));
  assert.deepEqual([dead.reason, dead.error], ["permanent", "refused for good"]);
  const batches = () =>
    daemon.stdout.filter(isJson((r) => r.msg === "child stderr" && /^batch /.test(String(r.line))))
      .map((line) => JSON.parse(line));
  await waitFor(async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    return stats.entries[0].outcomes.finish === 29;
  }, { message: "every other item finished" });
  const sizes = batches().map((b) => Number(String(b.line).split(" ")[1]));
  assert.equal(sizes.reduce((sum, size) => sum + size, 0), bodies.length);
  assert.ok(sizes.every((size) => size >= 1 && size <= 5), `sizes ${sizes}`);
  assert.equal(new Set(batches().map((b) => b.child_pid)).size, 2, "both children ran batches");
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});
