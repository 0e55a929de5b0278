/**
 * The stall watchdog: a thread that turns is left alone however busy it is;
 * one that stops turning for `stall_timeout` gets one fatal line on stderr
 * and a SIGKILL. Against a real nsqd, the daemon started again and again as
 * a service manager would: the other entry handles all its messages, and
 * the poison message is dead-lettered without running past `max_attempts`.
 */
import assert from "node:assert/strict";
import { type CliProcess, spawnCli, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { BLOCKED_ID } from "../fixtures/stall_main.ts";

const STALL_MS = 2_000;
/** What a loaded machine may add to `stall_timeout` before the process is gone. */
const EXIT_MARGIN_MS = 3_000;
const CHANNEL = "worker";

/** The watchdog's lines among `lines` (stderr also holds what Deno prints), parsed. */
function fatalLines(lines: readonly string[]): Record<string, unknown>[] {
  return lines.flatMap((line) => {
    try {
      const record = JSON.parse(line);
      return record?.logger === "nsqworker.watchdog" ? [record] : [];
    } catch {
      return [];
    }
  });
}

/** `promise`, or a failure naming `what` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for the process to exit, at most `ms`. */
function exited(process: CliProcess, ms: number): Promise<Deno.CommandStatus> {
  return within(process.status, ms, "the process's exit");
}

Deno.test("a thread that turns is not killed: a 1.5s block, then 3s of busy work in chunks", async () => {
  await using watched = spawnCli([String(STALL_MS), "block:1500", "chunks:3000"], {
    entry: "stall",
  });
  const status = await exited(watched, 20_000);
  assert.deepEqual(watched.stdout, ["block:1500 done", "chunks:3000 done"]);
  assert.deepEqual(fatalLines(watched.stderr), []);
  assert.equal(status.code, 0);
});

Deno.test("a thread blocked past stall_timeout: one fatal line naming what it started, then SIGKILL", async () => {
  const startedAt = performance.now();
  await using watched = spawnCli([String(STALL_MS), "block:60000"], { entry: "stall" });
  // The block starts as soon as the watchdog watches; the process start-up
  // comes before it, so the time measured here is an upper bound.
  const status = await exited(watched, 10_000 + STALL_MS + EXIT_MARGIN_MS);
  const elapsedMs = performance.now() - startedAt;
  assert.equal(status.signal, "SIGKILL");
  assert.equal(status.code, 137);
  assert.ok(elapsedMs >= STALL_MS, `killed after ${elapsedMs} ms, before stall_timeout`);
  const [line, ...more] = fatalLines(watched.stderr);
  assert.deepEqual(more, []);
  assert.ok(line, `no fatal line; stderr: ${watched.stderr.join("\n")}`);
  assert.equal(line.level, "error");
  assert.match(String(line.msg), /has not turned for .* \(stall_timeout 2s\)/);
  assert.match(String(line.msg), /killing the process \(SIGKILL\)/);
  assert.deepEqual(
    {
      in: line.in,
      topic: line.topic,
      channel: line.channel,
      worker: line.worker,
      msg_id: line.msg_id,
      attempts: line.attempts,
      stall_timeout: line.stall_timeout,
      in_flight: line.in_flight,
    },
    {
      in: "message",
      topic: "stall",
      channel: "c",
      worker: "endless_loop",
      msg_id: BLOCKED_ID,
      attempts: 3,
      stall_timeout: "2s",
      in_flight: [],
    },
  );
  assert.ok((line.stalled_ms as number) > STALL_MS, `stalled_ms ${line.stalled_ms}`);
  assert.equal(typeof line.time, "string");
});

Deno.test("a handler in an endless loop: killed and restarted until its message is dead-lettered; the other entry handles all of its messages", async () => {
  const maxAttempts = 2;
  // Longer than stall_timeout: the poison stays with the stalled daemon
  // until it is killed, and comes back to the next one.
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: ["--msg-timeout=4s"] });
  await using dir = await TempDir.create();
  const stuck = uniqueTopic("stuck");
  const healthy = uniqueTopic("healthy");
  const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
  await nsq.publishMany(healthy, bodies);
  await nsq.publish(stuck, "poison");
  const config = {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    defaults: { max_attempts: maxAttempts },
    log: { level: "info", format: "json" },
    http: { listen: null },
    stall_timeout: `${STALL_MS}ms`,
    workers: [
      {
        topic: stuck,
        channel: CHANNEL,
        worker: "endless_loop",
        options: { runs: dir.join("runs.txt") },
      },
      {
        topic: healthy,
        channel: CHANNEL,
        worker: "record",
        // Its messages in flight at a kill come back too, an attempt used each.
        max_attempts: 10,
        options: { out: dir.join("out.txt") },
      },
    ],
  };
  const deadLettered = async () => ((await nsq.topic(`${stuck}.dead`))?.message_count ?? 0) > 0;

  /** The last daemon, which dead-lettered the poison: what it and the ones before did. */
  async function deadLetteredUnrun(daemon: CliProcess): Promise<void> {
    // The poison ran at most max_attempts times, then was dead-lettered unrun.
    const runs = (await dir.readLines("runs.txt")).map((line) => line.split(" "));
    assert.ok(
      runs.length >= 1 && runs.length <= maxAttempts,
      `the poison ran ${runs.length} times`,
    );
    const poisonId = runs[0]![0]!;
    assert.deepEqual(runs.map(([id]) => id), runs.map(() => poisonId));
    const [envelope] = await nsq.readTopic(`${stuck}.dead`, 1);
    const dead = JSON.parse(new TextDecoder().decode(envelope));
    assert.equal(dead.message_id, poisonId);
    assert.equal(dead.reason, "max_attempts");
    assert.equal(dead.attempts, maxAttempts + 1);

    // Every healthy message was handled, some maybe twice (the kills came before their FIN).
    await waitFor(async () => {
      const handled = new Set((await dir.readLines("out.txt")).map((line) => line.split(" ")[2]));
      return bodies.every((body) => handled.has(body));
    }, { timeoutMs: 15_000, message: "every healthy message handled" });
    assert.equal(await nsq.topic(`${healthy}.dead`), null);
    daemon.signal("SIGTERM");
    assert.equal((await exited(daemon, 15_000)).code, 0);
    assert.deepEqual(fatalLines(daemon.stderr), []);
  }

  for (let start = 1;; start++) {
    assert.ok(start <= maxAttempts + 1, `the daemon was started ${start} times`);
    const runsBefore = (await dir.readLines("runs.txt")).length;
    await using daemon = await startDaemon(dir, config);
    let ranAt = 0;
    await waitFor(async () => {
      if ((await dir.readLines("runs.txt")).length > runsBefore) {
        ranAt = performance.now();
        return true;
      }
      return await deadLettered();
    }, { timeoutMs: 20_000, message: "the poison's handler to run or its dead letter" });
    if (ranAt === 0) {
      await deadLetteredUnrun(daemon);
      break;
    }
    // Without a watchdog the daemon hangs here, and the wait fails.
    const status = await exited(daemon, STALL_MS + EXIT_MARGIN_MS);
    const elapsedMs = performance.now() - ranAt;
    assert.deepEqual([status.code, status.signal], [137, "SIGKILL"]);
    // The handler started at most a poll (25ms) before it was seen.
    assert.ok(elapsedMs >= STALL_MS - 100, `killed ${elapsedMs} ms after the handler started`);
    const [id, attempts] = (await dir.readLines("runs.txt")).at(-1)!.split(" ");
    const lines = fatalLines(daemon.stderr);
    assert.equal(lines.length, 1, daemon.stderr.join("\n"));
    const line = lines[0]!;
    assert.deepEqual(
      [line.level, line.in, line.topic, line.channel, line.worker, line.msg_id, line.attempts],
      ["error", "message", stuck, CHANNEL, "endless_loop", id, Number(attempts)],
    );
  }
});

Deno.test("a handler that blocks after an await: the fatal line lists its message in flight", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("resumed");
  await nsq.publish(topic, "poison");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: null },
    stall_timeout: `${STALL_MS}ms`,
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "endless_loop",
      // Over a heartbeat: the loop starts in a later turn, after the board was beaten.
      options: { runs: dir.join("runs.txt"), await_ms: 500 },
    }],
  });
  await waitFor(async () => (await dir.readLines("runs.txt")).length > 0, {
    message: "the handler to start",
  });
  const status = await exited(daemon, 500 + STALL_MS + EXIT_MARGIN_MS);
  assert.deepEqual([status.code, status.signal], [137, "SIGKILL"]);
  const [id] = (await dir.readLines("runs.txt"))[0]!.split(" ");
  const [line, ...more] = fatalLines(daemon.stderr);
  assert.deepEqual(more, []);
  assert.ok(line, daemon.stderr.join("\n"));
  // Nothing started since the last heartbeat: the loop is in a handler that was running.
  assert.deepEqual([line.in, line.msg_id], [undefined, undefined]);
  assert.deepEqual(line.in_flight, [
    { topic, channel: CHANNEL, worker: "endless_loop", msg_id: id, attempts: 1 },
  ]);
});
