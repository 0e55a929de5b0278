/**
 * A real network in between: Toxiproxy (tests/helpers/toxiproxy.ts) sits
 * between the in-process daemon and nsqd, nsqlookupd's HTTP or redis, and
 * adds latency, limits bandwidth, resets connections or makes them
 * half-open while a publisher keeps publishing. Each test ends with every id
 * handled (the ledger) and prints its figures: lost, duplicated, and the
 * bound duplicates must stay within.
 */

import assert from "node:assert/strict";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { PermanentError } from "../../src/mod.ts";
import { envelope, type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startRedis } from "../helpers/redis_server.ts";
import { startToxiproxy } from "../helpers/toxiproxy.ts";
import { Ledger, makeIds, reportFigures } from "./ledger.ts";
import { startPublisher } from "./paced_publisher.ts";

const CHANNEL = "work";

interface YamlOptions {
  readonly nsqd?: readonly string[];
  readonly lookupd?: readonly string[];
  readonly publish?: string;
  readonly maxInFlight?: number;
  readonly timeout?: string;
  readonly dedupe?: string;
  readonly maxAttempts?: number;
}

function yaml(topic: string, options: YamlOptions): string {
  return [
    "nsq:",
    `  nsqd_tcp_addresses: [${(options.nsqd ?? []).join(", ")}]`,
    `  lookupd_http_addresses: [${(options.lookupd ?? []).join(", ")}]`,
    ...(options.publish ? [`  publish_nsqd_tcp_address: ${options.publish}`] : []),
    "defaults:",
    "  requeue_delay: 10ms",
    "  max_requeue_delay: 100ms",
    `  max_attempts: ${options.maxAttempts ?? 1000}`,
    `  timeout: ${options.timeout ?? "10s"}`,
    ...(options.dedupe ? ["dedupe:", ...options.dedupe.split("\n").map((l) => `  ${l}`)] : []),
    "workers:",
    `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: ${
      options.maxInFlight ?? 20
    } }`,
    "",
  ].join("\n");
}

/** Records each body (an id) once its handler has done `sleepMs(id)` of work. */
function recorder(ledger: Ledger, sleepMs: (id: string) => number = () => 2): WorkerDefinition<
  string
> {
  return {
    decode: "text",
    async handle(id) {
      await new Promise((resolve) => setTimeout(resolve, sleepMs(id)));
      ledger.handled(id);
    },
  };
}

/** nsqd (without nsqlookupd) with a proxy in front of its TCP port, and a topic with its channel. */
async function nsqBehindProxy(prefix: string, nsqdArgs: readonly string[]) {
  const nsq = await startNsq({ lookupd: false, nsqdArgs });
  const toxiproxy = await startToxiproxy();
  const proxy = await toxiproxy.proxy("nsqd", nsq.nsqds[0]!.tcpAddress);
  const topic = uniqueTopic(prefix);
  await nsq.createChannel(topic, CHANNEL);
  return {
    nsq,
    proxy,
    topic,
    async [Symbol.asyncDispose]() {
      await toxiproxy.close();
      await nsq.close();
    },
  };
}

function entry(daemon: InProcessDaemon) {
  return daemon.supervisor.entries[0]!;
}

function logged(daemon: InProcessDaemon, msg: string): Record<string, unknown>[] {
  return daemon.logs.filter((record) => record.msg === msg);
}

async function drained(nsq: NsqCluster, topic: string): Promise<void> {
  await waitFor(async () => {
    const channel = await nsq.channel(topic, CHANNEL);
    return channel !== null &&
      channel.depth + channel.in_flight_count + channel.deferred_count === 0;
  }, { timeoutMs: 20_000, message: "nothing left on nsqd" });
}

function assertNothingLost(name: string, ledger: Ledger, extra: Record<string, unknown>) {
  const figures = { ...ledger.figures(), ...extra };
  reportFigures(name, figures);
  assert.deepEqual(ledger.lost(10), [], `${name}: ids lost`);
  assert.deepEqual(ledger.strangers(), []);
  return figures;
}

Deno.test("latency 200 ms ± 100 on the nsqd link, then removed: no message timeout in nsqd, long handlers TOUCHed", async () => {
  await using net = await nsqBehindProxy("latency", ["--msg-timeout=2s"]);
  const { nsq, proxy, topic } = net;
  await proxy.add("lag_down", "latency", { latency: 200, jitter: 100 });
  await proxy.add("lag_up", "latency", { latency: 200, jitter: 100 }, "upstream");
  const ledger = new Ledger();
  // One id in a hundred outlives nsqd's 2 s message timeout: only TOUCH keeps it.
  const long = (id: string) => id.endsWith("50");
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [proxy.listen], maxInFlight: 50 }),
    workers: { rec: recorder(ledger, (id) => long(id) ? 2_500 : 2) },
  });
  const ids = makeIds("l", 1_500);
  await using publisher = startPublisher({ nsq, topic, ids, ledger, ratePerSec: 500 });
  await waitFor(() => ledger.distinctHandled >= 600, { timeoutMs: 20_000, message: "600 handled" });
  await proxy.remove("lag_down");
  await proxy.remove("lag_up");
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 30_000, message: "every id handled" });
  await drained(nsq, topic);
  const channel = (await nsq.channel(topic, CHANNEL))!;
  await daemon.shutdown();
  const figures = assertNothingLost("toxiproxy_latency", ledger, {
    long_handlers: ids.filter(long).length,
    nsqd_timeouts: channel.timeout_count,
    bound: 0,
  });
  assert.equal(channel.timeout_count, 0, "nsqd timed out messages the daemon was handling");
  assert.equal(figures.duplicated, 0);
});

Deno.test("bandwidth 64 KB/s with 100 KiB bodies: every body arrives whole", async () => {
  await using net = await nsqBehindProxy("bandwidth", []);
  const { nsq, proxy, topic } = net;
  await proxy.add("narrow", "bandwidth", { rate: 64 });
  const size = 100 * 1024;
  const ledger = new Ledger();
  const torn: string[] = [];
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [proxy.listen], maxInFlight: 2 }),
    workers: {
      rec: {
        decode: "text",
        handle(body) {
          const id = body.slice(0, 7);
          if (body.length !== size) torn.push(id);
          ledger.handled(id);
        },
      },
    },
  });
  const ids = makeIds("b", 6);
  const started = performance.now();
  await using publisher = startPublisher({
    nsq,
    topic,
    ids,
    ledger,
    ratePerSec: 100,
    batch: 1,
    body: (id) => id.padEnd(size, "x"),
  });
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 30_000, message: "every id handled" });
  const seconds = (performance.now() - started) / 1000;
  await drained(nsq, topic);
  await daemon.shutdown();
  const figures = assertNothingLost("toxiproxy_bandwidth", ledger, {
    body_kib: 100,
    rate_kb_s: 64,
    seconds: Math.round(seconds * 10) / 10,
    bound: 0,
  });
  assert.deepEqual(torn, []);
  assert.equal(figures.duplicated, 0);
  // 600 KiB at 64 KB/s cannot take less than about 9.6 s: the toxic was in the way.
  assert.ok(seconds > 8, `took ${seconds} s: the bandwidth toxic did not apply`);
});

Deno.test("reset_peer on the nsqd link three times under load: reconnected each time, nothing lost", async () => {
  await using net = await nsqBehindProxy("reset", ["--msg-timeout=2s"]);
  const { nsq, proxy, topic } = net;
  const ledger = new Ledger();
  const maxInFlight = 20;
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [proxy.listen], maxInFlight }),
    workers: { rec: recorder(ledger, () => 5) },
  });
  await waitFor(() => entry(daemon).consumer.status().connected.length === 1, {
    message: "connected",
  });
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("r", 3_000),
    ledger,
    ratePerSec: 1_000,
  });
  const resets = 3;
  for (let i = 1; i <= resets; i++) {
    await waitFor(() => ledger.distinctHandled >= i * 600, { message: `${i * 600} handled` });
    await proxy.add("reset", "reset_peer", { timeout: 0 });
    await waitFor(() => logged(daemon, "nsqd connection lost; reconnecting").length >= i, {
      message: `connection ${i} reset`,
    });
    await proxy.remove("reset");
    await waitFor(() => logged(daemon, "reconnected to nsqd").length >= i, {
      message: `reconnect ${i}`,
    });
  }
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 20_000, message: "every id handled" });
  await drained(nsq, topic);
  await daemon.shutdown();
  const bound = maxInFlight * resets;
  const figures = assertNothingLost("toxiproxy_reset_peer", ledger, { resets, bound });
  assert.ok(figures.duplicated <= bound, `${figures.duplicated} duplicates, bound ${bound}`);
});

Deno.test("a half-open nsqd connection (bytes vanish, no FIN, no RST): noticed by the idle timeout, reconnected, redeliveries handled", async () => {
  await using net = await nsqBehindProxy("half_open", ["--msg-timeout=2s"]);
  const { nsq, proxy, topic } = net;
  const ledger = new Ledger();
  const maxInFlight = 20;
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [proxy.listen], maxInFlight }),
    workers: { rec: recorder(ledger, () => 5) },
    // nsqd drops a client that is silent for two of its heartbeats (6 s);
    // the daemon must notice first, at 3 s, on its own.
    connection: { heartbeatIntervalMs: 3_000, idleTimeoutMs: 3_000 },
  });
  await waitFor(() => entry(daemon).consumer.status().connected.length === 1, {
    message: "connected",
  });
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("h", 2_000),
    ledger,
    ratePerSec: 500,
  });
  await waitFor(() => ledger.distinctHandled >= 500, { message: "500 handled" });
  const cutAt = performance.now();
  await proxy.add("void_down", "timeout", { timeout: 0 });
  await proxy.add("void_up", "timeout", { timeout: 0 }, "upstream");
  await waitFor(() => logged(daemon, "nsqd connection lost; reconnecting").length >= 1, {
    timeoutMs: 15_000,
    message: "the half-open connection noticed",
  });
  const noticedMs = Math.round(performance.now() - cutAt);
  await proxy.remove("void_down");
  await proxy.remove("void_up");
  await waitFor(() => logged(daemon, "reconnected to nsqd").length >= 1, {
    timeoutMs: 15_000,
    message: "reconnected",
  });
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 20_000, message: "every id handled" });
  await drained(nsq, topic);
  await daemon.shutdown();
  const lost = logged(daemon, "nsqd connection lost; reconnecting")[0]!;
  const figures = assertNothingLost("toxiproxy_half_open", ledger, {
    noticed_after_ms: noticedMs,
    error: lost.error,
    bound: maxInFlight,
  });
  assert.ok(noticedMs < 6_000, `noticed after ${noticedMs} ms, not before nsqd's own 6 s`);
  assert.equal(lost.error, "no data from nsqd for 3 s (idle timeout)", "the loss says why");
  assert.ok(figures.duplicated <= maxInFlight, `${figures.duplicated} duplicates`);
});

Deno.test("nsqlookupd's HTTP slow (5 s) then failing: discovery keeps the connections it has", async () => {
  await using nsq = await startNsq();
  await using toxiproxy = await startToxiproxy();
  const proxy = await toxiproxy.proxy("lookupd", nsq.lookupd!.httpUrl.replace("http://", ""));
  const topic = uniqueTopic("lookupd_slow");
  await nsq.createChannel(topic, CHANNEL);
  await waitFor(async () => {
    const response = await fetch(`${nsq.lookupd!.httpUrl}/lookup?topic=${topic}`);
    await response.body?.cancel();
    return response.ok;
  }, { message: "nsqlookupd lists the topic" });
  const ledger = new Ledger();
  await using daemon = await startInProcess({
    yaml: yaml(topic, { lookupd: [`http://${proxy.listen}`], publish: nsq.nsqds[0]!.tcpAddress }),
    workers: { rec: recorder(ledger) },
  });
  const connected = () => entry(daemon).consumer.status().connected.length;
  await waitFor(() => connected() === 1, { message: "nsqd found through nsqlookupd" });
  let dropped = 0;
  const watch = setInterval(() => {
    if (connected() !== 1) dropped++;
  }, 50);
  try {
    await using publisher = startPublisher({
      nsq,
      topic,
      ids: makeIds("k", 8_000),
      ledger,
      ratePerSec: 1_000,
    });
    await proxy.add("slow", "latency", { latency: 5_000 });
    // Six seconds of answers that take five: every poll meanwhile waits on one.
    await waitFor(() => ledger.distinctHandled >= 6_000, {
      timeoutMs: 15_000,
      message: "6000 handled while slow",
    });
    await proxy.remove("slow");
    await proxy.add("fail", "reset_peer", { timeout: 0 }, "upstream");
    await waitFor(() => logged(daemon, "nsqlookupd did not answer").length >= 1, {
      message: "nsqlookupd's failure logged",
    });
    await publisher.done;
    await waitFor(() => ledger.complete(), { message: "every id handled" });
  } finally {
    clearInterval(watch);
  }
  await drained(nsq, topic);
  await daemon.shutdown();
  const figures = assertNothingLost("toxiproxy_lookupd_slow_failing", ledger, {
    samples_without_the_connection: dropped,
    bound: 0,
  });
  assert.equal(dropped, 0, "the connection to nsqd was dropped while nsqlookupd was slow/failing");
  assert.equal(figures.duplicated, 0);
});

Deno.test("the publishing nsqd behind reset_peer: ctx.publish rejects clearly, dead letters requeued, none lost", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using toxiproxy = await startToxiproxy();
  const proxy = await toxiproxy.proxy("publish", nsq.nsqds[0]!.tcpAddress);
  const topic = uniqueTopic("pub_reset");
  const out = `${topic}_out`;
  const dead = `${topic}.dead`;
  await nsq.createChannel(topic, CHANNEL);
  await nsq.createChannel(out, "check");
  await nsq.createChannel(dead, "check");
  const ledger = new Ledger();
  const publishErrors: string[] = [];
  const publishedOn = new Set<string>();
  await using daemon = await startInProcess({
    yaml: yaml(topic, { nsqd: [nsq.nsqds[0]!.tcpAddress], publish: proxy.listen }),
    workers: {
      rec: {
        decode: "text",
        async handle(id, ctx) {
          // One id in ten is dead-lettered; the rest are published on.
          if (id.endsWith("7")) throw new PermanentError(`${id} is refused`);
          try {
            await ctx.publish(out, id);
          } catch (error) {
            publishErrors.push(String(error));
            throw error;
          }
          ledger.handled(id);
          publishedOn.add(id);
        },
      },
    },
  });
  const ids = makeIds("p", 600);
  await using publisher = startPublisher({ nsq, topic, ids, ledger, ratePerSec: 600 });
  await waitFor(() => ledger.distinctHandled >= 100, { message: "100 published on" });
  await proxy.add("reset", "reset_peer", { timeout: 0 }, "upstream");
  await waitFor(() => publishErrors.length >= 20 && entry(daemon).stats.deadLetterFailures >= 5, {
    message: "publishes and dead letters refused",
  });
  await publisher.done;
  await proxy.remove("reset");
  const dropped = ids.filter((id) => id.endsWith("7"));
  const kept = ids.filter((id) => !id.endsWith("7"));
  await waitFor(() => kept.every((id) => publishedOn.has(id)), {
    timeoutMs: 20_000,
    message: "every kept id published on",
  });
  await drained(nsq, topic);
  const deadLetters = (await nsq.readTopic(dead, dropped.length, { channel: "check" }))
    .map((bytes) => envelope(bytes).message_id as string);
  const stats = entry(daemon).stats.snapshot();
  await daemon.shutdown();
  // The dead ids count as handled once their dead letter is in nsqd.
  assert.equal(new Set(deadLetters).size, dropped.length);
  for (const id of dropped) ledger.handled(id);
  const figures = assertNothingLost("toxiproxy_publish_reset", ledger, {
    publish_errors: publishErrors.length,
    dead_letter_failures: stats.deadLetterFailures,
    dead_letters: deadLetters.length,
  });
  assert.match(publishErrors[0]!, new RegExp(`cannot publish to ${out}`));
  assert.ok(figures.published === ids.length);
});

Deno.test("redis (redis store) slow beyond the 1 s call timeout, then reset: on_store_error retry requeues, nothing lost", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using redis = await startRedis();
  await using toxiproxy = await startToxiproxy();
  const proxy = await toxiproxy.proxy("redis", `127.0.0.1:${redis.port}`);
  const topic = uniqueTopic("redis_faults");
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  await using daemon = await startInProcess({
    yaml: yaml(topic, {
      nsqd: [nsq.nsqds[0]!.tcpAddress],
      dedupe: `store: redis://${proxy.listen}/0\non_store_error: retry`,
    }),
    workers: { rec: recorder(ledger) },
  });
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("d", 2_000),
    ledger,
    ratePerSec: 500,
  });
  await waitFor(() => ledger.distinctHandled >= 300, { message: "300 handled" });
  const stats = entry(daemon).stats;
  await proxy.add("slow", "latency", { latency: 1_500 });
  await waitFor(() => stats.storeFailures >= 1, { message: "a claim timed out" });
  await proxy.remove("slow");
  const failuresWhenSlow = stats.storeFailures;
  await proxy.add("reset", "reset_peer", { timeout: 0 }, "upstream");
  await waitFor(() => stats.storeFailures > failuresWhenSlow, { message: "a claim reset" });
  await proxy.remove("reset");
  await publisher.done;
  await waitFor(() => ledger.complete(), { timeoutMs: 30_000, message: "every id handled" });
  await drained(nsq, topic);
  const snapshot = stats.snapshot();
  await daemon.shutdown();
  const figures = assertNothingLost("toxiproxy_redis_slow_reset", ledger, {
    store_failures: snapshot.storeFailures,
    dedupe_bypassed: snapshot.dedupeBypassed,
    bound: 0,
  });
  // With on_store_error: retry no handler runs without its claim.
  assert.equal(snapshot.dedupeBypassed, 0);
  assert.equal(figures.duplicated, 0);
});
