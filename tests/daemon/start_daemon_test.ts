/**
 * The daemon's composition root and its handle: shutdown once however often
 * it is asked for, `await using`, reload, pause and resume through the
 * handle, and the shutdown steps that each run even when one fails.
 */

import assert from "node:assert/strict";
import { startDaemon } from "../../src/daemon/start_daemon.ts";
import { runShutdownSteps } from "../../src/daemon/shutdown_steps.ts";
import type { Logger, WorkerDefinition } from "../../src/worker/worker.ts";
import { FAST_TIMINGS, prepareInProcess, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

/** A config consuming each of `topics` on channel `work` with `test/worker`. */
function yaml(nsqd: string, topics: readonly string[], extra = ""): string {
  return `nsq:\n  nsqd_tcp_addresses: [${nsqd}]\n${extra}workers:\n` +
    topics.map((topic) => `  - { topic: ${topic}, channel: work, worker: test/worker }\n`).join("");
}

const HTTP_ON = "http: { listen: 127.0.0.1:0 }\n";

Deno.test("shutdown: a second call gives the first one's promise, and each step runs once", async () => {
  await using nsq = await startNsq({ lookupd: false });
  let tornDown = 0;
  const daemon = await startInProcess({
    yaml: yaml(nsq.nsqds[0]!.tcpAddress, [uniqueTopic("once")], HTTP_ON),
    workers: { "test/worker": { handle() {}, teardown: () => void tornDown++ } },
  });
  const base = `http://${daemon.http!.addressText}`;
  await waitFor(() => daemon.stats().readiness.ready, { message: "ready" });
  assert.equal(await (await fetch(`${base}/ping`)).text(), "OK");

  const first = daemon.shutdown();
  assert.equal(daemon.shutdown(), first);
  await first;
  assert.equal(daemon.shutdown(), first, "once done, too");
  await daemon[Symbol.asyncDispose]();
  assert.equal(tornDown, 1);
  const count = (msg: string) => daemon.logs.filter((record) => record.msg === msg).length;
  assert.equal(count("shutting down"), 1);
  assert.equal(count("stopped"), 1);
  assert.equal(count("shutdown step failed"), 0);
  assert.equal(daemon.stats().draining, true);
  assert.equal(daemon.stats().entries[0]!.state, "stopped");
  await assert.rejects(fetch(`${base}/ping`), "the HTTP surface is closed");
});

Deno.test("await using shuts the daemon down at the end of its block", async () => {
  await using nsq = await startNsq({ lookupd: false });
  let tornDown = 0;
  let base: string;
  {
    await using daemon = await startInProcess({
      yaml: yaml(nsq.nsqds[0]!.tcpAddress, [uniqueTopic("using")], HTTP_ON),
      workers: { "test/worker": { handle() {}, teardown: () => void tornDown++ } },
    });
    base = `http://${daemon.http!.addressText}`;
    assert.equal(await (await fetch(`${base}/ping`)).text(), "OK");
    assert.equal(tornDown, 0);
  }
  assert.equal(tornDown, 1);
  await assert.rejects(fetch(`${base}/ping`), "the HTTP surface is closed");
});

Deno.test("reload through the handle: new entries start and the new log: section applies", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!.tcpAddress;
  const [first, added] = [uniqueTopic("kept"), uniqueTopic("added")] as [string, string];
  const handled: string[] = [];
  const worker: WorkerDefinition = { handle: (_body, ctx) => void handled.push(ctx.topic) };
  const workers = { "test/worker": worker };
  const logs: Record<string, unknown>[] = [];
  const log = (level: string) => `log: { level: ${level}, format: json }\n`;
  await using daemon = await startDaemon(
    await prepareInProcess(yaml(nsqd, [first], log("info")), workers),
    { writeLog: (line) => logs.push(JSON.parse(line)), timings: FAST_TIMINGS },
  );
  await daemon.started;
  await nsq.publish(first, "{}");
  await waitFor(() => handled.length === 1, { message: "handled at level info" });
  assert.equal(logs.filter((record) => record.msg === "finished").length, 0, "no debug lines");

  const plan = await daemon.reload(
    await prepareInProcess(yaml(nsqd, [first, added], log("debug")), workers),
  );
  assert.deepEqual(plan.added.map((entry) => entry.topic), [added]);
  assert.deepEqual(plan.unchanged.map((entry) => entry.topic), [first]);
  assert.equal(daemon.config.log.level, "debug");
  assert.deepEqual(daemon.stats().entries.map((entry) => entry.topic), [first, added]);
  await nsq.publish(added, "{}");
  await waitFor(() => handled.includes(added), { message: "the added entry consumes" });
  await waitFor(() => logs.some((record) => record.msg === "finished" && record.topic === added), {
    message: "a debug line after the reload",
  });

  await daemon.shutdown();
  await assert.rejects(
    async () => daemon.reload(await prepareInProcess(yaml(nsqd, [first]), workers)),
    /cannot reload: the daemon is shutting down/,
  );
});

Deno.test("pause and resume through the handle: RDY 0 on nsqd, then back", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("handlepause");
  await using daemon = await startInProcess({
    yaml: yaml(nsq.nsqds[0]!.tcpAddress, [topic]),
    workers: { "test/worker": { handle() {} } },
  });
  const readyCount = async () => (await nsq.channel(topic, "work"))?.clients[0]?.ready_count;
  const { maxInFlight } = daemon.stats().entries[0]!;
  await waitFor(async () => (await readyCount()) === maxInFlight, { message: "RDY on nsqd" });

  assert.equal(daemon.pause(topic, "work")?.consumer.paused, true);
  await waitFor(async () => (await readyCount()) === 0, { message: "RDY 0 on nsqd" });
  assert.equal(daemon.stats().entries[0]!.consumer.paused, true);
  assert.equal(daemon.resume(topic, "work")?.consumer.paused, false);
  await waitFor(async () => (await readyCount()) === maxInFlight, { message: "RDY given back" });
  assert.equal(daemon.pause(topic, "other"), null);
  assert.equal(daemon.resume("other", "work"), null);
});

Deno.test("an http.listen port in use rejects the start before any worker's setup()", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let setups = 0;
  const workers = { "test/worker": { setup: () => void setups++, handle() {} } };
  const prepared = await prepareInProcess(
    yaml("127.0.0.1:1", ["t"], `http: { listen: 127.0.0.1:${taken.addr.port} }\n`),
    workers,
  );
  await assert.rejects(
    startDaemon(prepared, { writeLog: () => {} }),
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.addr.port} \\(http\\.listen\\)`),
  );
  assert.equal(setups, 0);
});

Deno.test("runShutdownSteps runs every step in order, even after one throws or rejects", async () => {
  const ran: string[] = [];
  const errors: Record<string, unknown>[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warning() {},
    error: (msg, fields) => errors.push({ msg, ...fields }),
  };
  await runShutdownSteps([
    ["entries", () => void ran.push("entries")],
    ["store", () => {
      ran.push("store");
      throw new Error("closed twice");
    }],
    ["server", () => {
      ran.push("server");
      return Promise.reject(new TypeError("refused"));
    }],
    ["log", () => Promise.resolve(void ran.push("log"))],
  ], log);
  assert.deepEqual(ran, ["entries", "store", "server", "log"]);
  assert.deepEqual(errors, [
    { msg: "shutdown step failed", step: "store", error: "closed twice" },
    { msg: "shutdown step failed", step: "server", error: "TypeError: refused" },
  ]);
});
