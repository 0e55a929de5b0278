/**
 * The consumer (src/nsq/consumer.ts) against real nsqd and nsqlookupd:
 * discovery, RDY across several nsqd, readiness, dead peers, reconnection.
 */
import assert from "node:assert/strict";
import type { HostPort } from "../../src/config/types.ts";
import { Consumer, type ConsumerOptions } from "../../src/nsq/consumer.ts";
import type { ConnectionOptions } from "../../src/nsq/connection_options.ts";
import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import type { Logger } from "../../src/worker/worker.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import type { Nsqd } from "../helpers/nsq/nsq_server.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { trapUncaught } from "../helpers/fakes.ts";
import { startTcpRelay } from "../helpers/tcp_relay.ts";

const CHANNEL = "consumer_test";
const HOST = "127.0.0.1";

const CONNECTION: ConnectionOptions = {
  authSecret: null,
  tls: null,
  compression: "none",
  heartbeatIntervalMs: 1_000,
  idleTimeoutMs: 10_000,
};

interface LogRecord {
  readonly level: "debug" | "info" | "warning" | "error";
  readonly message: string;
  readonly properties: Record<string, unknown>;
}

/** Keeps what was logged. */
class CapturingLogger implements Logger {
  readonly records: LogRecord[] = [];

  debug(message: string, properties: Record<string, unknown> = {}): void {
    this.records.push({ level: "debug", message, properties });
  }
  info(message: string, properties: Record<string, unknown> = {}): void {
    this.records.push({ level: "info", message, properties });
  }
  warning(message: string, properties: Record<string, unknown> = {}): void {
    this.records.push({ level: "warning", message, properties });
  }
  error(message: string, properties: Record<string, unknown> = {}): void {
    this.records.push({ level: "error", message, properties });
  }

  /** How often `message` was logged, for one nsqd when `nsqd` is given. */
  count(message: string, nsqd?: string): number {
    return this.records.filter((r) =>
      r.message === message && (nsqd === undefined || r.properties.nsqd === nsqd)
    ).length;
  }

  /** The messages logged, in order, for one nsqd. */
  messagesFor(nsqd: string): string[] {
    return this.records.filter((r) => r.properties.nsqd === nsqd).map((r) => r.message);
  }
}

/** A started consumer that finishes what it gets (after `holdMs`) and records it. */
interface Running extends AsyncDisposable {
  readonly consumer: Consumer;
  readonly log: CapturingLogger;
  readonly received: NsqMessage[];
  /** The most messages its handler held at once. */
  readonly maxRunning: number;
  /** Messages received from the nsqd at `address`. */
  from(address: string): number;
}

interface ConsumeOptions extends Partial<Omit<ConsumerOptions, "connection">> {
  readonly topic: string;
  readonly connection?: Partial<ConnectionOptions>;
  /** How long the handler holds each message before finishing it. Default 0: at once. */
  readonly holdMs?: number;
}

function consume(options: ConsumeOptions): Running {
  const { holdMs = 0, connection, ...rest } = options;
  const log = new CapturingLogger();
  const received: NsqMessage[] = [];
  let running = 0;
  let maxRunning = 0;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const consumer = new Consumer({
    channel: CHANNEL,
    maxInFlight: 1,
    nsqdAddresses: [],
    lookupdUrls: [],
    log,
    ...rest,
    connection: { ...CONNECTION, ...connection },
    onMessage: (message) => {
      received.push(message);
      running++;
      maxRunning = Math.max(maxRunning, running);
      const finish = () => {
        running--;
        message.finish();
      };
      if (holdMs === 0) {
        finish();
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        finish();
      }, holdMs);
      timers.add(timer);
    },
  });
  consumer.start();
  return {
    consumer,
    log,
    received,
    get maxRunning() {
      return maxRunning;
    },
    from: (address) => received.filter((m) => m.nsqdAddress === address).length,
    async [Symbol.asyncDispose]() {
      await waitFor(() => timers.size === 0, { message: "held messages to be finished" });
      await consumer.drain();
      await consumer.close();
    },
  };
}

function hostPort(nsqd: Nsqd): HostPort {
  return { host: HOST, port: nsqd.tcpPort };
}

/** A port on loopback where nothing listens. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The RDY each nsqd has for the consumer's channel (0 while not subscribed). */
async function readyCounts(nsq: NsqCluster, topic: string): Promise<number[]> {
  return await Promise.all(nsq.nsqds.map(async (nsqd, i) => {
    if (!nsqd.running) return 0;
    const channel = await nsq.channel(topic, CHANNEL, i);
    return channel?.clients.reduce((sum, client) => sum + client.ready_count, 0) ?? 0;
  }));
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);

async function producersOf(nsq: NsqCluster, topic: string): Promise<number> {
  const response = await fetch(`${nsq.lookupd!.httpUrl}/lookup?topic=${topic}`);
  if (response.status === 404) {
    await response.body?.cancel();
    return 0;
  }
  const { producers } = await response.json() as { producers: unknown[] };
  return producers.length;
}

/** Creates the topic on the given nsqd and waits until nsqlookupd lists them all. */
async function registerTopic(nsq: NsqCluster, topic: string, nsqds: readonly number[]) {
  for (const i of nsqds) await nsq.createTopic(topic, i);
  await waitFor(async () => await producersOf(nsq, topic) === nsqds.length, {
    message: `nsqlookupd to list ${nsqds.length} nsqd for ${topic}`,
  });
}

/** The pid of a running nsqd, found by its data directory (the harness does not expose it). */
async function pidOf(nsqd: Nsqd): Promise<number> {
  const { stdout } = await new Deno.Command("pgrep", {
    args: ["-f", "--", `--data-path=${nsqd.dataDir}`],
  }).output();
  const pids = new TextDecoder().decode(stdout).trim().split(/\s+/).filter(Boolean).map(Number);
  assert.equal(pids.length, 1, `one nsqd process with --data-path=${nsqd.dataDir}: ${pids}`);
  return pids[0]!;
}

for (const [nsqds, expected] of [[2, [2, 3]], [3, [1, 2, 2]]] as const) {
  Deno.test(`consumes from ${nsqds} nsqd behind one nsqlookupd; their RDY adds up to max_in_flight 5`, async () => {
    await using nsq = await startNsq({ nsqds });
    const topic = uniqueTopic(`lookupd_${nsqds}`);
    const indexes = nsq.nsqds.map((_, i) => i);
    await registerTopic(nsq, topic, indexes);
    await using run = consume({
      topic,
      maxInFlight: 5,
      lookupdUrls: [nsq.lookupd!.httpUrl],
      timings: { lookupdPollIntervalMs: 100 },
      holdMs: 2,
    });
    assert.deepEqual(run.consumer.status().connected, []);

    // Readiness from our own tracking (nsqjs's Reader never fires `ready` with two nsqd).
    await waitFor(() => run.consumer.status().connected.length === nsqds, {
      message: `${nsqds} connections`,
    });
    assert.notEqual(run.consumer.status().connected.length, 0);
    const status = run.consumer.status();
    assert.deepEqual([...status.connected].sort(), nsq.nsqds.map((n) => n.tcpAddress).sort());
    assert.deepEqual(status.disconnected, []);
    // RDY taken from the first connection reaches the others once nsqd has read the cut.
    await waitFor(() => run.consumer.status().rdy === 5, { message: "RDY 5 given out" });
    await waitFor(async () => sum(await readyCounts(nsq, topic)) === 5, {
      message: "nsqd to see RDY 5 in all",
    });
    assert.deepEqual(sorted(await readyCounts(nsq, topic)), expected);

    const perNsqd = 60;
    for (const i of indexes) {
      await nsq.publishMany(topic, Array.from({ length: perNsqd }, (_, j) => `${i}.${j}`), i);
    }
    const total = perNsqd * nsqds;
    let samples = 0;
    await waitFor(async () => {
      const counts = await readyCounts(nsq, topic);
      assert.ok(sum(counts) <= 5, `RDY ${counts} exceeds max_in_flight 5`);
      assert.ok(run.consumer.status().rdy <= 5);
      samples++;
      return run.received.length === total;
    }, { message: `${total} messages`, intervalMs: 0 });
    assert.ok(samples > 1, `sampled ${samples} times while consuming`);
    assert.ok(run.maxRunning <= 5, `${run.maxRunning} messages handled at once`);
    for (const nsqd of nsq.nsqds) assert.equal(run.from(nsqd.tcpAddress), perNsqd);
    assert.deepEqual(sorted(await readyCounts(nsq, topic)), expected);
  });
}

/**
 * A fake nsqd that accepts IDENTIFY and never answers SUB: a connection to it
 * stays in its handshake, never ready.
 */
function stuckNsqd(): { readonly port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const conns: Deno.Conn[] = [];
  // A response frame: size 6, type 0 (response), "OK".
  const ok = new Uint8Array([0, 0, 0, 6, 0, 0, 0, 0, 79, 75]);
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    let answered = false;
    try {
      while (await conn.read(buffer) !== null) {
        if (!answered) await conn.write(ok);
        answered = true;
      }
    } catch {
      // Closed by the test.
    }
  };
  const serving: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      serving.push(serve(conn));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed by the peer.
        }
      }
      await Promise.all(serving);
    },
  };
}

Deno.test("direct nsqd addresses that refuse or never finish the handshake take no RDY from the healthy one", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using stuck = stuckNsqd();
  const topic = uniqueTopic("dead_direct");
  const healthy = nsq.nsqds[0]!;
  const refused = { host: HOST, port: closedPort() };
  await using run = consume({
    topic,
    maxInFlight: 4,
    nsqdAddresses: [hostPort(healthy), refused, { host: HOST, port: stuck.port }],
    timings: { reconnectMinMs: 10, reconnectMaxMs: 40 },
  });
  await waitFor(async () => (await readyCounts(nsq, topic))[0] === 4, {
    message: "RDY 4 on the healthy nsqd",
  });
  const refusedAddress = `${HOST}:${refused.port}`;
  assert.deepEqual(run.consumer.status(), {
    connected: [healthy.tcpAddress],
    disconnected: [refusedAddress, `${HOST}:${stuck.port}`],
    paused: false,
    rdy: 4,
    nsqds: [
      { address: healthy.tcpAddress, connected: true, rdy: 4, inFlight: 0 },
      { address: refusedAddress, connected: false, rdy: 0, inFlight: 0 },
      { address: `${HOST}:${stuck.port}`, connected: false, rdy: 0, inFlight: 0 },
    ],
  });

  await nsq.publishMany(topic, Array.from({ length: 40 }, (_, i) => `${i}`));
  await waitFor(() => run.received.length === 40, { message: "40 messages" });
  await waitFor(() => run.log.count("nsqd connection lost; reconnecting", refusedAddress) >= 3, {
    message: "repeated failures of the refusing address",
  });
  assert.deepEqual(await readyCounts(nsq, topic), [4]);
  assert.equal(run.consumer.status().rdy, 4);
  assert.equal(run.log.count("connected to nsqd"), 1);
});

Deno.test("a stopped nsqd gives its RDY back to the running one", async () => {
  await using nsq = await startNsq({ nsqds: 2, lookupd: false });
  const topic = uniqueTopic("stopped");
  await using run = consume({
    topic,
    maxInFlight: 5,
    nsqdAddresses: nsq.nsqds.map(hostPort),
    timings: { reconnectMinMs: 20, reconnectMaxMs: 100 },
  });
  await waitFor(async () => sum(await readyCounts(nsq, topic)) === 5, { message: "RDY 5" });
  assert.deepEqual(sorted(await readyCounts(nsq, topic)), [2, 3]);

  await nsq.nsqds[1]!.stop();
  await waitFor(async () => (await readyCounts(nsq, topic))[0] === 5, {
    message: "RDY 5 on the nsqd still running",
  });
  assert.deepEqual(run.consumer.status().connected, [nsq.nsqds[0]!.tcpAddress]);
  await nsq.publishMany(topic, Array.from({ length: 30 }, (_, i) => `${i}`));
  await waitFor(() => run.received.length === 30, { message: "30 messages" });
  assert.equal(run.from(nsq.nsqds[0]!.tcpAddress), 30);
});

Deno.test("max_in_flight 1 over 2 nsqd: RDY rotates and both are consumed", async () => {
  await using nsq = await startNsq({ nsqds: 2, lookupd: false });
  const topic = uniqueTopic("rotate");
  await nsq.publishMany(topic, ["0.0", "0.1", "0.2", "0.3", "0.4"], 0);
  await nsq.publishMany(topic, ["1.0", "1.1", "1.2", "1.3", "1.4"], 1);
  await using run = consume({
    topic,
    maxInFlight: 1,
    nsqdAddresses: nsq.nsqds.map(hostPort),
    timings: { rdyIdleMs: 30 },
    holdMs: 1,
  });
  await waitFor(() => {
    assert.ok(run.consumer.status().rdy <= 1);
    return run.received.length === 10;
  }, { message: "10 messages", intervalMs: 5 });
  assert.equal(run.maxRunning, 1);
  for (const nsqd of nsq.nsqds) assert.equal(run.from(nsqd.tcpAddress), 5);
});

Deno.test("a frozen nsqd is found dead by the idle timeout; the consumer reconnects once it runs again", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const topic = uniqueTopic("sigstop");
  // Through a relay that counts nsqd's heartbeats.
  await using relay = startTcpRelay(nsqd.tcpPort);
  await using run = consume({
    topic,
    nsqdAddresses: [{ host: HOST, port: relay.port }],
    // nsqjs takes both in whole seconds.
    connection: { heartbeatIntervalMs: 1_000, idleTimeoutMs: 2_000 },
    timings: { reconnectMinMs: 50, reconnectMaxMs: 200 },
  });
  await waitFor(() => run.log.count("connected to nsqd") === 1, { message: "connected" });
  // Idle longer than the idle timeout (three heartbeats, a second apart, after
  // IDENTIFY's answer): heartbeats keep a live nsqd's connection up.
  await waitFor(() => relay.seen("_heartbeat_") >= 3, {
    message: "three heartbeats",
    timeoutMs: 10_000,
  });
  assert.equal(run.log.count("nsqd connection lost; reconnecting"), 0);
  assert.equal(relay.accepted, 1, "one connection, never replaced");

  const pid = await pidOf(nsqd);
  Deno.kill(pid, "SIGSTOP");
  try {
    // TCP alone would not notice for minutes; the 2 s idle timeout (from the
    // last heartbeat, up to 1 s before SIGSTOP) gives up within seconds. The
    // deadline leaves room for a loaded machine, not for TCP's timeouts.
    await waitFor(() => run.log.count("nsqd connection lost; reconnecting") > 0, {
      message: "the connection to a frozen nsqd to be given up by the idle timeout",
      timeoutMs: 10_000,
    });
    assert.deepEqual(run.consumer.status().connected, []);
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
  await waitFor(() => run.log.count("reconnected to nsqd") === 1, {
    message: "reconnected",
    timeoutMs: 8_000,
  });
  await nsq.publish(topic, "after");
  await waitFor(() => run.received.length === 1, { message: "a message after reconnecting" });
});

Deno.test("reconnects to an nsqd restarted on the same ports and consumes again", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const topic = uniqueTopic("restart");
  await using run = consume({
    topic,
    nsqdAddresses: [hostPort(nsqd)],
    timings: { reconnectMinMs: 20, reconnectMaxMs: 100 },
  });
  await nsq.publish(topic, "before");
  await waitFor(() => run.received.length === 1, { message: "a message before the restart" });

  await nsqd.stop();
  await waitFor(() => run.log.count("nsqd connection lost; reconnecting") > 0, {
    message: "the loss to be logged",
  });
  assert.deepEqual(run.consumer.status().connected, []);
  await nsqd.start();
  await waitFor(() => run.log.count("reconnected to nsqd") === 1, { message: "reconnected" });
  const events = run.log.messagesFor(nsqd.tcpAddress).filter((m) => m !== "nsqd error");
  assert.equal(events[0], "connected to nsqd");
  assert.equal(events[1], "nsqd connection lost; reconnecting");
  assert.equal(events.at(-1), "reconnected to nsqd");

  await nsq.publish(topic, "after");
  await waitFor(() => run.received.length === 2, { message: "a message after the restart" });
  assert.equal(new TextDecoder().decode(run.received[1]!.body), "after");
});

Deno.test("keeps consuming from direct and discovered nsqd while nsqlookupd is down", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  const topic = uniqueTopic("lookupd_down");
  await registerTopic(nsq, topic, [1]);
  await using run = consume({
    topic,
    maxInFlight: 4,
    nsqdAddresses: [hostPort(nsq.nsqds[0]!)],
    lookupdUrls: [nsq.lookupd!.httpUrl],
    timings: { lookupdPollIntervalMs: 50 },
  });
  await waitFor(() => run.consumer.status().connected.length === 2, { message: "2 connections" });

  await nsq.lookupd!.stop();
  await waitFor(() => run.log.count("nsqlookupd did not answer") === 1, {
    message: "the failing lookupd to be logged",
  });
  await nsq.publishMany(topic, ["a", "b", "c"], 0);
  await nsq.publishMany(topic, ["d", "e", "f"], 1);
  await waitFor(() => run.received.length === 6, { message: "6 messages" });
  for (const nsqd of nsq.nsqds) assert.equal(run.from(nsqd.tcpAddress), 3);
  assert.equal(run.consumer.status().connected.length, 2);
  assert.equal(run.log.count("nsqlookupd did not answer"), 1, "logged once, not per poll");
});

Deno.test({
  name:
    "an nsqd connection nsqjs refuses to make (snappy without --allow-ffi) is logged, not thrown",
  // snappy is a Node-API addon: without ffi, nsqjs's constructor throws
  // "Cannot use snappy since it did not successfully install via npm".
  permissions: {
    ffi: false,
    net: "inherit",
    read: "inherit",
    env: "inherit",
    run: "inherit",
    write: "inherit",
    sys: "inherit",
  },
}, async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq();
  const topic = uniqueTopic("snappy_no_ffi");
  await registerTopic(nsq, topic, [0]);
  await using run = consume({
    topic,
    lookupdUrls: [nsq.lookupd!.httpUrl],
    connection: { compression: "snappy" },
    timings: { lookupdPollIntervalMs: 50, reconnectMinMs: 50 },
  });
  await waitFor(
    () =>
      uncaught.errors.length > 0 ||
      run.log.records.some((r) => /snappy/.test(String(r.properties.error))),
    { message: "the failure to be logged, or to escape" },
  );
  assert.deepEqual(uncaught.errors.map(String), [], "errors escaped to the process");
  assert.deepEqual(run.consumer.status().connected, []);
});

Deno.test("a message held while its nsqd goes away stays in flight, and its RDY is given back only once it is answered", async () => {
  await using nsq = await startNsq({ nsqds: 2, lookupd: false });
  const topic = uniqueTopic("held_over_close");
  const held: NsqMessage[] = [];
  const consumer = new Consumer({
    topic,
    channel: CHANNEL,
    maxInFlight: 2,
    nsqdAddresses: nsq.nsqds.map(hostPort),
    lookupdUrls: [],
    log: new CapturingLogger(),
    connection: CONNECTION,
    // The stopped nsqd is not retried within this test.
    timings: { reconnectMinMs: 60_000, reconnectMaxMs: 60_000 },
    onMessage: (message) => void held.push(message),
  });
  consumer.start();
  try {
    await waitFor(async () => sum(await readyCounts(nsq, topic)) === 2, { message: "RDY 2" });
    await nsq.publish(topic, "held", 1);
    await waitFor(() => held.length === 1, { message: "the message from the second nsqd" });
    await nsq.nsqds[1]!.stop();
    await waitFor(() => consumer.status().connected.length === 1, { message: "one connection" });
    // Its handler still runs: it counts against max_in_flight on the nsqd left.
    assert.equal(consumer.inFlight, 1);
    await waitFor(async () => (await readyCounts(nsq, topic))[0] === 1, { message: "RDY 1" });
    assert.equal(consumer.status().rdy, 1);

    assert.equal(held[0]!.finish(), false, "the connection is gone");
    assert.equal(consumer.inFlight, 0);
    await waitFor(async () => (await readyCounts(nsq, topic))[0] === 2, { message: "RDY 2" });
  } finally {
    await consumer.drain();
    await consumer.close();
  }
});
