/**
 * Reload of a running daemon process: SIGHUP with a broken file keeps the
 * running config; SIGHUP with a valid one applies it; --reload-on-change
 * reloads when the file is written.
 */

import assert from "node:assert/strict";
import { spawnCli, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

function config(nsqd: string, out: string, topics: string[], maxInFlight = 5): string {
  const entries = topics.map((topic) =>
    `  - topic: ${topic}\n    channel: work\n    worker: record\n` +
    `    max_in_flight: ${maxInFlight}\n    options: { out: ${JSON.stringify(out)} }\n`
  ).join("");
  return `nsq:\n  nsqd_tcp_addresses: [${nsqd}]\nhttp: { listen: null }\n` +
    `log: { level: info }\nworkers:\n${entries}`;
}

const isJson = (predicate: (record: Record<string, unknown>) => boolean) => (line: string) => {
  try {
    return predicate(JSON.parse(line));
  } catch {
    return false;
  }
};

Deno.test("SIGHUP: a broken config is refused with its location, a valid one is applied", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const [first, second] = [uniqueTopic("hup_a"), uniqueTopic("hup_b")];
  const out = dir.join("handled.txt");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  await using daemon = await startDaemon(dir, config(nsqd, out, [first!]));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));

  await dir.writeConfig(
    config(nsqd, out, [first!]).replace("max_in_flight: 5", "max_in_flight: x"),
  );
  daemon.signal("SIGHUP");
  const refused = await daemon.waitForLine(
    isJson((r) => r.msg === "reload refused; the running config stays"),
  );
  assert.match(
    String(JSON.parse(refused).error),
    /config\.yaml:\d+:\d+: workers\[0\]\.max_in_flight must be an integer/,
  );
  await nsq.publish(first!, "still consuming");
  await waitFor(async () => (await dir.readLines("handled.txt")).length === 1);

  await dir.writeConfig(config(nsqd, out, [first!, second!]));
  daemon.signal("SIGHUP");
  const reloaded = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "reloaded")));
  assert.deepEqual(reloaded.added, [`${second}/work`]);
  assert.equal(reloaded.unchanged, 1);
  await nsq.publish(second!, "new entry");
  await waitFor(async () => (await dir.readLines("handled.txt")).length === 2);
  const connects = daemon.stdout.filter(
    isJson((r) => r.msg === "connected to nsqd" && r.topic === first),
  );
  assert.equal(connects.length, 1, "the untouched entry never reconnected");

  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

Deno.test("--reload-on-change reloads when the config file is written", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("watch");
  const out = dir.join("handled.txt");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  const path = await dir.writeConfig(config(nsqd, out, [topic]));
  await using daemon = spawnCli(["run", "-c", path, "--reload-on-change"], { writeDir: dir.path });
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));
  await Deno.writeTextFile(path, config(nsqd, out, [topic], 7));
  const reloaded = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "reloaded")));
  assert.deepEqual(reloaded.changed, [`${topic}/work`]);
  await waitFor(async () =>
    (await nsq.channel(topic, "work"))?.clients.map((c) => c.ready_count).join() === "7"
  );
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

/** The three ways editors and tools save a file. */
const SAVES = {
  /** vim, many IDEs, `git checkout`: a new file renamed over the old one. */
  atomic: async (path: string, text: string) => {
    const temp = `${path}.tmp`;
    await Deno.writeTextFile(temp, text);
    await Deno.rename(temp, path);
  },
  "in place": (path: string, text: string) => Deno.writeTextFile(path, text),
  "delete and re-create": async (path: string, text: string) => {
    await Deno.remove(path);
    await Deno.writeTextFile(path, text);
  },
} as const;

Deno.test("--reload-on-change applies every save: atomic, in place, delete and re-create", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("saves");
  const out = dir.join("handled.txt");
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  const withHttp = (maxInFlight: number) =>
    config(nsqd, out, [topic], maxInFlight).replace(
      "http: { listen: null }",
      'http: { listen: "127.0.0.1:0" }',
    );
  const path = await dir.writeConfig(withHttp(10));
  await using daemon = spawnCli(["run", "-c", path, "--reload-on-change"], { writeDir: dir.path });
  const listening = JSON.parse(await daemon.waitForLine(isJson((r) => r.msg === "http listening")));
  await daemon.waitForLine(isJson((r) => r.msg === "connected to nsqd"));
  // The entry's state and max_in_flight; it stays listed while a reload restarts it.
  const entry = async () => {
    const stats = await (await fetch(`http://${listening.address}/stats`)).json();
    assert.equal(stats.entries.length, 1, "the entry is listed in /stats at every moment");
    return `${stats.entries[0].state} ${stats.entries[0].max_in_flight}`;
  };
  let value = 10;
  for (const [kind, save] of Object.entries(SAVES)) {
    for (let i = 0; i < 3; i++) {
      value++;
      await save(path, withHttp(value));
      await waitFor(async () => (await entry()) === `running ${value}`, {
        message: `${kind} save ${i + 1}: running with max_in_flight ${value} in /stats`,
      });
    }
  }
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});
