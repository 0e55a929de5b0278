/**
 * The circuit breaker against a real nsqd and a real downstream (a local HTTP
 * server) that goes away for a while: while it is open the entry takes
 * nothing (RDY 0 on nsqd), half open it lets exactly one message through,
 * and the outage, longer than the retry schedule, dead-letters nothing.
 */
import assert from "node:assert/strict";
import type { BreakerState } from "../../src/entry/breaker.ts";
import type { RunningEntry } from "../../src/entry/running_entry.ts";
import { oneEntryYaml, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const CHANNEL = "work";

/** A downstream that answers 503 while `down`, and 200 otherwise. */
function startDownstream() {
  const state = { down: true, requests: 0 };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      state.requests++;
      return new Response(state.down ? "down" : "ok", { status: state.down ? 503 : 200 });
    },
  );
  return {
    state,
    url: `http://127.0.0.1:${server.addr.port}/`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A run of the handler: its body and the breaker's state and half-open count as it started. */
interface Start {
  readonly body: string;
  readonly state: BreakerState;
  readonly halfOpens: number;
}

/** A worker that calls the downstream and fails when it does, noting the breaker as it starts. */
function callingWorker(url: string, entry: () => RunningEntry, starts: Start[], done: Set<string>) {
  return {
    decode: "text" as const,
    async handle(body: string) {
      const breaker = entry().breaker!.snapshot();
      starts.push({ body, state: breaker.state, halfOpens: breaker.transitions.half_open });
      const response = await fetch(url);
      const text = await response.text();
      if (!response.ok) throw new Error(`downstream answered ${response.status} ${text}`);
      done.add(body);
    },
  };
}

/** One entry of `test/worker` at max_attempts 3, retried at once, with `breaker`. */
function yamlFor(nsq: NsqCluster, topic: string, breaker: string, maxAttempts = 3): string {
  return oneEntryYaml(
    nsq.nsqds[0]!.tcpAddress,
    topic,
    `max_in_flight: 5, max_attempts: ${maxAttempts}, requeue_delay: 0ms, ` +
      `max_requeue_delay: 0ms, timeout: 2s, breaker: ${breaker}`,
  );
}

/** RDY nsqd holds for the channel's clients, summed. */
async function nsqdRdy(nsq: NsqCluster, topic: string): Promise<number> {
  const channel = await nsq.channel(topic, CHANNEL);
  return (channel?.clients ?? []).reduce((sum, client) => sum + client.ready_count, 0);
}

Deno.test("breaker: a downstream outage longer than the retries dead-letters nothing; open takes nothing, half open one", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using downstream = startDownstream();
  const topic = uniqueTopic("outage");
  // Few messages, requeued at once: every one meets the outage again and again.
  const bodies = Array.from({ length: 6 }, (_, i) => `m${i}`);
  await nsq.publishMany(topic, bodies);
  const starts: Start[] = [];
  const done = new Set<string>();
  let running: RunningEntry | null = null;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, "{ failure_rate: 50%, min_runs: 5, window: 2s, open_for: 200ms }"),
    workers: { "test/worker": callingWorker(downstream.url, () => running!, starts, done) },
    logLevel: "info",
  });
  running = daemon.supervisor.entries[0]!;
  const breaker = () => running!.breaker!.snapshot();

  await waitFor(() => breaker().state === "open", { message: "the breaker opened" });
  const outageStartedAt = performance.now();
  // While open, nsqd holds RDY 0 for us: sampled well inside open periods.
  let openSamples = 0;
  while (performance.now() - outageStartedAt < 2_500) {
    const before = breaker();
    const openFor = before.openedAt === null ? 0 : Date.now() - before.openedAt;
    if (before.state === "open" && openFor >= 60 && openFor <= 150) {
      const rdy = await nsqdRdy(nsq, topic);
      const after = breaker();
      if (after.state === "open" && after.transitions.open === before.transitions.open) {
        assert.equal(rdy, 0, "nsqd holds RDY 0 while the breaker is open");
        assert.equal(running.consumer.status().rdy, 0);
        openSamples++;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(openSamples >= 2, `RDY sampled in ${openSamples} open periods`);
  assert.equal(done.size, 0, "nothing succeeded while the downstream was down");
  downstream.state.down = false;

  await waitFor(() => done.size + running!.stats.snapshot().outcomes.dead >= bodies.length, {
    timeoutMs: 15_000,
    message: "every message handled (or dead) once the downstream is back",
  });
  const stats = running.stats.snapshot();
  const final = breaker();
  assert.equal(stats.outcomes.dead, 0, "nothing dead-lettered");
  assert.equal(await nsq.topic(`${topic}.dead`), null, "no dead letter topic was even created");
  assert.equal(stats.outcomes.finish, bodies.length);
  assert.equal(final.state, "closed");
  assert.equal(final.transitions.closed, 1);
  // Each message let through about twice: without excusing, three failed runs each.
  assert.ok(final.transitions.open >= 9, `opened ${final.transitions.open} times`);
  assert.equal(final.transitions.half_open, final.transitions.open, "every opening half-opened");
  assert.ok(final.excused > 0, "deliveries were excused");
  // No handler started while open; each half-open period started exactly one.
  assert.deepEqual(starts.filter((start) => start.state === "open"), []);
  const probes = new Map<number, number>();
  for (const start of starts.filter((start) => start.state === "half_open")) {
    probes.set(start.halfOpens, (probes.get(start.halfOpens) ?? 0) + 1);
  }
  assert.equal(probes.size, final.transitions.half_open, "a message in every half-open period");
  assert.deepEqual([...probes.values()].filter((n) => n !== 1), [], "exactly one in each");
  const changes = daemon.logs.filter((line) => String(line.msg).startsWith("breaker "));
  assert.ok(
    changes.some((line) => String(line.msg).startsWith("breaker closed")),
    "the change to closed is logged",
  );
  await waitFor(async () => (await nsq.channel(topic, CHANNEL))?.depth === 0, {
    message: "the channel drained",
  });
});

Deno.test("breaker: fewer failed runs than min_runs never open it", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using downstream = startDownstream();
  const topic = uniqueTopic("few");
  const bodies = Array.from({ length: 8 }, (_, i) => `f${i}`);
  await nsq.publishMany(topic, bodies);
  const starts: Start[] = [];
  let running: RunningEntry | null = null;
  await using daemon = await startInProcess({
    yaml: yamlFor(nsq, topic, "{ failure_rate: 50%, min_runs: 10, window: 10s, open_for: 10s }", 1),
    workers: { "test/worker": callingWorker(downstream.url, () => running!, starts, new Set()) },
    logLevel: "info",
  });
  running = daemon.supervisor.entries[0]!;
  // 8 messages of one attempt each: 8 runs, every one failed, below min_runs 10.
  await waitFor(() => running!.stats.snapshot().outcomes.dead === bodies.length, {
    message: "every message dead-lettered after its one attempt",
  });
  const breaker = running.breaker!.snapshot();
  assert.equal(starts.length, 8);
  assert.equal(breaker.state, "closed");
  assert.deepEqual(breaker.transitions, { closed: 0, open: 0, half_open: 0 });
  assert.equal(breaker.runs, 8);
  assert.equal(breaker.failureRate, 1);
  assert.equal(breaker.excused, 0);
});
