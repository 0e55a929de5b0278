import assert from "node:assert/strict";
import { planReload } from "../../src/daemon/reload_plan.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { workerFile } from "../../src/worker/worker_loader.ts";
import { prepareInProcess, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { validConfig } from "../helpers/valid_config.ts";

function config(entries: string, extra = ""): string {
  return `
nsq:
  nsqd_tcp_addresses: [127.0.0.1:4150]
${extra}
workers:
${entries}`;
}

const parse = (text: string) => validConfig(text, "c.yaml");

Deno.test("planReload sorts entries into added, removed, changed and unchanged", () => {
  const before = parse(config(`
  - { topic: a, channel: c, worker: w }
  - { topic: b, channel: c, worker: w }
  - { topic: d, channel: c, worker: w }`));
  const after = parse(config(
    `
  - { topic: a, channel: c, worker: w }
  - { topic: b, channel: c, worker: w, max_in_flight: 3 }
  - { topic: e, channel: c, worker: w }`,
    "dedupe: { capacity: 10 }",
  ));
  const plan = planReload(before, after);
  const names = (entries: readonly { topic: string }[]) => entries.map((e) => e.topic);
  assert.deepEqual(names(plan.unchanged), ["a"]);
  assert.deepEqual(names(plan.changed), ["b"]);
  assert.deepEqual(names(plan.added), ["e"]);
  assert.deepEqual(names(plan.removed), ["d"]);
  assert.deepEqual(plan.needsRestart, ["dedupe"]);
  assert.equal(plan.publisherChanged, false);
});

Deno.test("planReload: an entry moved to another line is unchanged; nsq changes restart all", () => {
  const before = parse(config(`
  - { topic: a, channel: c, worker: w }`));
  const moved = parse(config(`

  - { topic: a, channel: c, worker: w }`));
  assert.equal(planReload(before, moved).unchanged.length, 1);
  const other = parse(
    config(`
  - { topic: a, channel: c, worker: w }`).replace("127.0.0.1:4150", "127.0.0.1:4151"),
  );
  const plan = planReload(before, other);
  assert.equal(plan.changed.length, 1);
  assert.equal(plan.publisherChanged, true);
});

Deno.test("reload: untouched entries keep consuming, changed restart, added start, removed stop", async () => {
  await using nsq = await startNsq();
  const [keep, change, remove, add] = ["keep", "change", "remove", "add"].map(uniqueTopic);
  const handled = new Map<string, number>();
  const worker: WorkerDefinition = {
    handle: (_body, ctx) => void handled.set(ctx.topic, (handled.get(ctx.topic) ?? 0) + 1),
  };
  const entry = (topic: string, extra = "") =>
    `  - { topic: ${topic}, channel: work, worker: test/worker${extra} }\n`;
  const head = `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\nworkers:\n`;
  await using daemon = await startInProcess({
    yaml: head + entry(keep!) + entry(change!) + entry(remove!),
    workers: { "test/worker": worker },
  });
  const { supervisor } = daemon;
  await waitFor(() => supervisor.readiness().ready);
  const kept = supervisor.entries[0]!;
  const next = validConfig(
    head + entry(keep!) + entry(change!, ", max_in_flight: 3") + entry(add!),
  );
  const workers = next.workers.map((e) => ({
    name: e.worker,
    file: workerFile(e.worker),
    definition: worker,
    options: {},
  }));
  const plan = await supervisor.reload(next, workers);
  assert.deepEqual(plan.unchanged.map((e) => e.topic), [keep]);
  assert.equal(supervisor.entries[0], kept, "the untouched entry was not replaced");
  assert.deepEqual(supervisor.entries.map((e) => e.entry.topic), [keep, change, add]);
  await waitFor(() => supervisor.readiness().ready);
  const connects = daemon.logs.filter((r) => r.msg === "connected to nsqd" && r.topic === keep);
  assert.equal(connects.length, 1, "the untouched entry never reconnected");

  for (const topic of [keep!, change!, remove!, add!]) await nsq.publish(topic, "{}");
  await waitFor(() => handled.get(keep!) === 1 && handled.get(change!) === 1);
  await waitFor(() => handled.get(add!) === 1);
  const changed = await nsq.channel(change!, "work");
  assert.deepEqual(changed?.clients.map((c) => c.ready_count), [3]);
  const removed = await nsq.channel(remove!, "work");
  assert.equal(removed?.clients.length, 0, "the removed entry is disconnected");
  assert.equal(handled.get(remove!), undefined);
});

Deno.test("reload: /stats keeps listing a changed or removed entry, with its state, while it stops", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const [change, remove] = ["change", "remove"].map(uniqueTopic);
  // teardown() of the old runs and setup() of the new run wait until let go,
  // so /stats is read at each step of the reload, not at a moment in time.
  const tornDown = Promise.withResolvers<void>();
  const finishTeardown = Promise.withResolvers<void>();
  const setUp = Promise.withResolvers<void>();
  const finishSetup = Promise.withResolvers<void>();
  let setups = 0;
  let teardowns = 0;
  const worker: WorkerDefinition = {
    setup: async () => {
      if (++setups <= 2) return;
      setUp.resolve();
      await finishSetup.promise;
    },
    handle: () => {},
    teardown: async () => {
      if (++teardowns === 2) tornDown.resolve();
      await finishTeardown.promise;
    },
  };
  const yaml = (entries: string) =>
    `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\n` +
    `http: { listen: "127.0.0.1:0" }\nworkers:\n${entries}`;
  const entry = (topic: string, maxInFlight: number) =>
    `  - { topic: ${topic}, channel: work, worker: test/worker, max_in_flight: ${maxInFlight} }\n`;
  await using daemon = await startInProcess({
    yaml: yaml(entry(change!, 2) + entry(remove!, 2)),
    workers: { "test/worker": worker },
    // Each read below must see the entries as they are at that step.
    renderMaxAgeMs: 0,
  });
  // Disposed before the daemon: a failed assertion lets go of the waits, so the
  // daemon stops at once rather than after its shutdown timeout.
  using _letGo = {
    [Symbol.dispose]: () => {
      finishTeardown.resolve();
      finishSetup.resolve();
    },
  };
  const listed = async () => {
    const stats = await (await fetch(`http://${daemon.http!.addressText}/stats`)).json();
    return (stats.entries as Record<string, unknown>[]).map((e) =>
      `${e.topic} ${e.state} ${e.max_in_flight}`
    );
  };
  assert.deepEqual(await listed(), [`${change} running 2`, `${remove} running 2`]);

  const reloading = daemon.reload(
    await prepareInProcess(yaml(entry(change!, 3)), { "test/worker": worker }),
  );
  await tornDown.promise;
  assert.deepEqual(
    await listed(),
    [`${change} draining 2`, `${remove} draining 2`],
    "both entries are listed while they drain",
  );
  assert.equal(daemon.stats().readiness.ready, true, "entries on their way out do not count");
  finishTeardown.resolve();
  await setUp.promise;
  assert.deepEqual(
    await listed(),
    [`${change} starting 3`],
    "the new run took the old one's place",
  );
  finishSetup.resolve();
  await reloading;
  assert.deepEqual(await listed(), [`${change} running 3`]);
});
