/**
 * Several daemon processes on one host sharing one `sqlite:` dedupe store
 * (docs/scale.md): every event is published to both nsqd, so each
 * arrives twice, in any of the four processes; the shared store lets one of
 * them handle it.
 */
import assert from "node:assert/strict";
import { type CliProcess, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const PROCESSES = 4;
const CHANNEL = "shared";

function logged(msg: string): (line: string) => boolean {
  return (line) => line.includes(`"msg":"${msg}"`);
}

/** The ledger's lines as `[pid, event]`. */
async function ledger(dir: TempDir): Promise<[string, string][]> {
  return (await dir.readLines("ledger.txt")).map((line) => {
    const at = line.indexOf(" ");
    return [line.slice(0, at), line.slice(at + 1)];
  });
}

/** Whether both nsqd have nothing left for the channel: every copy was finished. */
async function drained(nsq: NsqCluster, topic: string): Promise<boolean> {
  for (const i of [0, 1]) {
    const channel = await nsq.channel(topic, CHANNEL, i);
    if (channel === null) return false;
    if (channel.depth + channel.in_flight_count + channel.deferred_count > 0) return false;
  }
  return true;
}

async function publishToBoth(nsq: NsqCluster, topic: string, events: string[]): Promise<void> {
  await Promise.all([nsq.publishMany(topic, events, 0), nsq.publishMany(topic, events, 1)]);
}

Deno.test("four daemons sharing one sqlite store handle each event once, and lose none when two are killed", async () => {
  // A SIGKILLed daemon's messages come back after nsqd's msg-timeout.
  await using nsq = await startNsq({ nsqds: 2, lookupd: false, nsqdArgs: ["--msg-timeout=2s"] });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("shared_sqlite");
  for (const i of [0, 1]) await nsq.createChannel(topic, CHANNEL, i);
  const config = {
    nsq: { nsqd_tcp_addresses: nsq.nsqds.map((nsqd) => nsqd.tcpAddress) },
    dedupe: { store: `sqlite:${dir.join("dedupe.db")}` },
    http: { listen: null },
    shutdown_timeout: "2s",
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "shared_ledger",
      max_in_flight: 8,
      options: { out: dir.join("ledger.txt"), sleep_ms: 2 },
    }],
  };
  const daemons: CliProcess[] = [];
  try {
    for (let i = 0; i < PROCESSES; i++) daemons.push(await startDaemon(dir, config));
    await Promise.all(
      daemons.map((daemon) => daemon.waitForLines(logged("connected to nsqd"), 2)),
    );

    // Every event twice, to every process: exactly one handler run each.
    const first = Array.from({ length: 400 }, (_, i) => `first-${i}`);
    await publishToBoth(nsq, topic, first);
    await waitFor(async () => (await ledger(dir)).length >= first.length && drained(nsq, topic), {
      timeoutMs: 30_000,
      message: "the first events handled and both copies finished",
    });
    const handled = await ledger(dir);
    const counts = new Map<string, number>();
    for (const [, event] of handled) counts.set(event, (counts.get(event) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [...first].sort());
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], "events handled more than once across the processes");
    const pids = new Set(handled.map(([pid]) => pid));
    assert.equal(pids.size, PROCESSES, `processes that handled events: ${[...pids].join(", ")}`);

    // Two of the four die mid-run: the other two handle what they had.
    const second = Array.from({ length: 400 }, (_, i) => `second-${i}`);
    await publishToBoth(nsq, topic, second);
    await waitFor(async () => (await ledger(dir)).length >= first.length + 100, {
      timeoutMs: 20_000,
      message: "the second events under way",
    });
    daemons[0]!.signal("SIGKILL");
    daemons[1]!.signal("SIGKILL");
    await Promise.all([daemons[0]!.status, daemons[1]!.status]);
    // Claims the killed processes held lapse with their lease (up to ~11 s here).
    await waitFor(async () => {
      const events = new Set((await ledger(dir)).map(([, event]) => event));
      return second.every((event) => events.has(event)) && drained(nsq, topic);
    }, { timeoutMs: 45_000, intervalMs: 100, message: "every second event handled" });
    const after = (await ledger(dir)).slice(handled.length);
    const repeated = after.length - new Set(after.map(([, event]) => event)).size;
    console.log(
      `shared sqlite: ${second.length} events, 2 of 4 processes killed, ` +
        `${repeated} handled twice (a handler ran, its process died before the done mark)`,
    );
  } finally {
    for (const daemon of daemons) daemon.signal("SIGTERM");
    await Promise.all(daemons.map((daemon) => daemon.status));
  }
});
