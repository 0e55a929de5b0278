/**
 * The nsqjs patches (src/nsq/nsqjs.ts) and the reader and writer
 * connections built on them, against a real nsqd: each of nsqjs 0.13.0's
 * defects that they claim to make harmless, shown to be so (or not) by
 * nsqd's own stats and by what the connection reports.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../../src/version.ts";
import type { ConnectionOptions, TlsOptions } from "../../src/nsq/connection_options.ts";
import type { NsqMessage } from "../../src/nsq/nsq_message.ts";
import { NSQJS_VERSION } from "../../src/nsq/nsqjs.ts";
import { ReaderConnection } from "../../src/nsq/reader_connection.ts";
import { WriterConnection } from "../../src/nsq/writer_connection.ts";
import { answersPing } from "../../tools/nsq_probe.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { trapUncaught } from "../helpers/fakes.ts";

const CHANNEL = "nsqjs_test";
const HOST = "127.0.0.1";
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const text = (message: NsqMessage) => decoder.decode(message.body);

const PLAIN: ConnectionOptions = {
  authSecret: null,
  tls: null,
  compression: "none",
  heartbeatIntervalMs: 1_000,
  idleTimeoutMs: 10_000,
};

/** Everything one connection reported, in order. */
interface Reader extends AsyncDisposable {
  readonly connection: ReaderConnection;
  readonly messages: NsqMessage[];
  /** Messages reported as answered, once per answer that took effect. */
  readonly responded: NsqMessage[];
  readonly errors: Error[];
  /** "ready", "message", "error", "closed", in the order they were reported. */
  readonly events: string[];
  /** `undefined` until `closed` was reported, then its error. */
  readonly closedWith: Error | null | undefined;
}

interface ReadOptions {
  readonly topic: string;
  readonly port?: number;
  /** RDY given once subscribed. Default 10. */
  readonly rdy?: number;
  readonly options?: Partial<ConnectionOptions>;
  /** Answers each delivery; by default messages are only collected. */
  readonly onMessage?: (message: NsqMessage) => void;
}

/** A subscribed-to-be reader connection that records what it reports. */
function read(nsq: NsqCluster | null, opts: ReadOptions): Reader {
  const port = opts.port ?? nsq?.nsqds[0]?.tcpPort;
  assert.ok(port !== undefined, "read() needs a port or a cluster");
  const messages: NsqMessage[] = [];
  const responded: NsqMessage[] = [];
  const errors: Error[] = [];
  const events: string[] = [];
  let closedWith: Error | null | undefined;
  const connection: ReaderConnection = new ReaderConnection(
    HOST,
    port,
    opts.topic,
    CHANNEL,
    { ...PLAIN, ...opts.options },
    {
      ready: () => {
        events.push("ready");
        connection.setRdy(opts.rdy ?? 10);
      },
      message: (message) => {
        events.push("message");
        messages.push(message);
        opts.onMessage?.(message);
      },
      responded: (message) => responded.push(message),
      error: (error) => {
        events.push("error");
        errors.push(error);
      },
      closed: (error) => {
        events.push("closed");
        closedWith = error;
      },
    },
  );
  connection.connect();
  return {
    connection,
    messages,
    responded,
    errors,
    events,
    get closedWith() {
      return closedWith;
    },
    async [Symbol.asyncDispose]() {
      await connection.drain();
      await connection.close();
      await waitFor(() => closedWith !== undefined, { message: "the connection to close" });
    },
  };
}

function assertNoUncaught(uncaught: { readonly errors: unknown[] }): void {
  assert.deepEqual(uncaught.errors.map(String), [], "errors escaped to the process");
}

async function channelOf(nsq: NsqCluster, topic: string) {
  const channel = await nsq.channel(topic, CHANNEL);
  assert.ok(channel, `nsqd has channel ${CHANNEL} of ${topic}`);
  return channel;
}

/** nsqd's raw `/stats` of the topic's clients, for fields the harness does not type (tls, deflate, snappy). */
async function rawClients(nsq: NsqCluster, topic: string): Promise<Record<string, unknown>[]> {
  const url = `${nsq.nsqds[0]!.httpUrl}/stats?format=json&topic=${topic}&channel=${CHANNEL}`;
  const stats = await (await fetch(url)).json();
  return stats.topics?.[0]?.channels?.[0]?.clients ?? [];
}

/** A port on loopback where nothing listens. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("IDENTIFY carries output_buffer_timeout when set, and nsqd takes it", async () => {
  // nsqd refuses an output_buffer_timeout below its minimum: a refusal shows that the value reached it.
  await using nsq = await startNsq({
    lookupd: false,
    nsqdArgs: ["--min-output-buffer-timeout=100ms"],
  });
  const topic = uniqueTopic("obt");
  await using buffered = read(nsq, { topic, options: { outputBufferTimeoutMs: 250 } });
  await using low = read(nsq, { topic, options: { outputBufferTimeoutMs: 25 } });
  // Unset, nothing is sent and nsqd's own default (250ms, above the minimum) applies.
  await using plain = read(nsq, { topic });
  await waitFor(() => buffered.events.includes("ready") && plain.events.includes("ready"));
  await waitFor(() => low.closedWith !== undefined, { message: "the low timeout refused" });
  assert.match(String(low.closedWith), /output buffer timeout \(25\) is invalid/);
  assert.ok(!low.events.includes("ready"));
  assert.deepEqual([...buffered.errors, ...plain.errors].map(String), []);
});

Deno.test("a second finish() or requeue() returns false, sends nothing and keeps the connection", async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("twice");
  await nsq.publishMany(topic, ["finish", "requeue"]);
  await using reader = read(nsq, { topic });
  await waitFor(() => reader.messages.length === 2, { message: "both messages" });
  const finished = reader.messages.find((m) => text(m) === "finish")!;
  const requeued = reader.messages.find((m) => text(m) === "requeue")!;

  assert.equal(finished.finish(), true);
  assert.equal(finished.finish(), false);
  assert.equal(finished.requeue(0), false);
  assert.equal(requeued.requeue(60_000), true);
  assert.equal(requeued.requeue(0), false);
  assert.equal(requeued.finish(), false);
  assert.ok(finished.responded && requeued.responded);
  assert.deepEqual(reader.responded, [finished, requeued]);

  // Still receiving after the duplicates were dropped.
  await nsq.publish(topic, "after");
  await waitFor(() => reader.messages.length === 3, { message: "the message published after" });
  assert.equal(text(reader.messages[2]!), "after");
  assert.equal(reader.messages[2]!.finish(), true);
  await waitFor(async () => (await channelOf(nsq, topic)).clients[0]?.finish_count === 2, {
    message: "the last FIN",
  });

  // nsqd handles a connection's commands in order: by its answer to CLS, an
  // E_FIN_FAILED or E_REQ_FAILED for a duplicate would have arrived.
  await reader.connection.drain();
  assert.deepEqual(reader.errors, []);
  assert.equal(reader.closedWith, undefined);
  assert.equal(reader.connection.isClosed, false);
  const channel = await channelOf(nsq, topic);
  assert.equal(channel.clients.length, 1);
  assert.equal(channel.clients[0]!.finish_count, 2);
  assert.equal(channel.clients[0]!.requeue_count, 1);
  assert.equal(channel.requeue_count, 1);
  assert.equal(channel.deferred_count, 1);
  assert.equal(channel.in_flight_count, 0);
  assert.equal(reader.responded.length, 3);
  assertNoUncaught(uncaught);
});

Deno.test("REQ with a fractional, negative or NaN delay requeues and keeps the connection", async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("req_delay");
  const delays: Record<string, number> = { "1.5": 1.5, "0.4": 0.4, "NaN": NaN, "-3": -3 };
  await nsq.publishMany(topic, Object.keys(delays));
  await using reader = read(nsq, {
    topic,
    onMessage: (message) => {
      const delay = delays[text(message)];
      if (message.attempts === 1 && delay !== undefined) assert.equal(message.requeue(delay), true);
      else message.finish();
    },
  });
  // nsqd counts a REQ when it handles it; then the connection still receives.
  await waitFor(async () => (await nsq.channel(topic, CHANNEL))?.requeue_count === 4, {
    message: "four REQs counted",
  });
  await nsq.publish(topic, "after");
  await waitFor(() => reader.messages.some((m) => text(m) === "after"), {
    message: "the message published after",
  });

  await reader.connection.drain();
  assert.deepEqual(reader.errors, []);
  assert.equal(reader.closedWith, undefined);
  const channel = await channelOf(nsq, topic);
  // The 2 ms one waits for nsqd's deferred-queue scan, which takes up to 5 s
  // to notice a new channel; the others come straight back.
  const redelivered = reader.messages.filter((m) => m.attempts === 2).length;
  assert.ok(redelivered >= 3, `${redelivered} redelivered`);
  assert.equal(redelivered + channel.deferred_count, 4);
  assert.equal(channel.requeue_count, 4);
  assert.equal(channel.clients[0]!.requeue_count, 4);
  assert.equal(channel.in_flight_count, 0);
  assert.equal(channel.depth, 0);
  assert.equal(channel.timeout_count, 0);
  assertNoUncaught(uncaught);
});

Deno.test("REQ with a delay beyond what nsqd can hold defers the message and keeps the connection", async () => {
  // nsqd reads the delay as digits only (1e21 prints as "1e+21": E_INVALID,
  // fatal) into int64 nanoseconds (1e13 ms wraps negative: redelivered at once).
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("req_huge");
  const delays: Record<string, number> = { "1e13": 1e13, "1e21": 1e21 };
  await nsq.publishMany(topic, Object.keys(delays));
  await using reader = read(nsq, {
    topic,
    onMessage: (message) => message.requeue(delays[text(message)] ?? 0),
  });
  await waitFor(() => reader.messages.length >= 2, { message: "both messages" });
  await reader.connection.drain();
  assert.deepEqual(reader.errors.map(String), []);
  assert.equal(reader.closedWith, undefined);
  const channel = await channelOf(nsq, topic);
  assert.equal(channel.deferred_count, 2, "both deferred (nsqd clamps to --max-req-timeout)");
  assert.equal(reader.messages.length, 2, "none redelivered at once");
  assertNoUncaught(uncaught);
});

Deno.test("connecting where nothing listens reports closed with the error", async () => {
  using uncaught = trapUncaught();
  await using reader = read(null, { topic: uniqueTopic("refused"), port: closedPort() });
  await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
  assert.match(String(reader.closedWith), /ECONNREFUSED/);
  assert.match(String(reader.errors[0]), /ECONNREFUSED/);
  assert.equal(reader.events[0], "error");
  assert.ok(!reader.events.includes("ready"));
  assert.equal(reader.connection.isClosed, true);
  assertNoUncaught(uncaught);
});

Deno.test("a socket error is reported once, before closed", async () => {
  await using reader = read(null, { topic: uniqueTopic("refused_once"), port: closedPort() });
  await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
  // Give a late duplicate the macrotask it would need to show up.
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(reader.events, ["error", "closed"]);
});

Deno.test("SUB to an invalid topic reports closed with the error instead of crashing", async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  await using reader = read(nsq, { topic: "not a topic!" });
  await waitFor(() => reader.closedWith !== undefined || uncaught.errors.length > 0, {
    message: "closed or a crash",
  });
  assertNoUncaught(uncaught);
  assert.match(String(reader.closedWith), /Invalid topic/);
  assert.ok(!reader.events.includes("ready"));
});

Deno.test("FINs given right before drain() and close() all reach nsqd", async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  const count = 50;
  for (const waitForDrain of [true, false]) {
    const topic = uniqueTopic("fin_close");
    await nsq.publishMany(topic, Array.from({ length: count }, (_, i) => `${i}`));
    await using reader = read(nsq, { topic, rdy: count });
    await waitFor(() => reader.messages.length === count, { message: `${count} messages` });
    for (const message of reader.messages) assert.equal(message.finish(), true);
    if (waitForDrain) {
      // CLS goes out at once, the FINs a tick later: nsqd may count them after CLOSE_WAIT.
      await reader.connection.drain();
      await waitFor(async () => (await channelOf(nsq, topic)).clients[0]?.finish_count === count, {
        message: `finish_count ${count}`,
      });
      assert.equal((await channelOf(nsq, topic)).in_flight_count, 0);
      await reader.connection.close();
    } else {
      // No await between the FINs, CLS and the end of the socket.
      await Promise.all([reader.connection.drain(), reader.connection.close()]);
    }
    await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
    assert.equal(reader.closedWith, null);
    // A lost FIN would stay in flight until --msg-timeout.
    const channel = await channelOf(nsq, topic);
    assert.deepEqual(
      [channel.in_flight_count, channel.requeue_count, channel.timeout_count, channel.depth],
      [0, 0, 0, 0],
      `in flight, requeued, timed out, depth (drain awaited: ${waitForDrain})`,
    );
    assert.equal(channel.message_count, count);
  }
  assertNoUncaught(uncaught);
});

Deno.test("messages that arrive after drain() started are handed back at once", async () => {
  using uncaught = trapUncaught();
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("drain_req");
  const count = 200;
  await nsq.publishMany(topic, Array.from({ length: count }, (_, i) => `${i}`));
  let drained: Promise<void> | undefined;
  await using reader = read(nsq, {
    topic,
    rdy: count,
    onMessage: () => drained ??= reader.connection.drain(),
  });
  await waitFor(() => drained !== undefined, { message: "the first message" });
  await drained;
  const delivered = reader.messages.length;
  for (const message of reader.messages) assert.equal(message.finish(), true);
  await reader.connection.close();

  const channel = await channelOf(nsq, topic);
  assert.ok(delivered < count, `${delivered} of ${count} delivered before CLS took effect`);
  assert.equal(channel.in_flight_count, 0);
  assert.equal(channel.timeout_count, 0);
  assert.equal(channel.deferred_count, 0);
  assert.equal(channel.requeue_count, count - delivered);
  assert.equal(channel.depth, count - delivered);
  assert.deepEqual(reader.errors, []);
  assertNoUncaught(uncaught);
});

/** A CA and an nsqd certificate signed by it, made with openssl in a temporary directory. */
interface Certificates extends AsyncDisposable {
  readonly ca: Uint8Array;
  readonly certFile: string;
  readonly keyFile: string;
}

async function makeCertificates(subjectAltName: string): Promise<Certificates> {
  const dir = await Deno.makeTempDir({ prefix: "nsqworker_tls_" });
  const openssl = async (...args: string[]) => {
    const { success, stderr } = await new Deno.Command("openssl", { args, cwd: dir }).output();
    if (!success) throw new Error(`openssl ${args[0]} failed: ${decoder.decode(stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    await openssl(
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/CN=nsqworker test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    );
    await Deno.writeTextFile(
      join(dir, "ext.cnf"),
      `subjectAltName=${subjectAltName}\nextendedKeyUsage=serverAuth\n`,
    );
    await openssl("req", ...ec, "-keyout", "nsqd.key", "-out", "nsqd.csr", "-subj", "/CN=nsqd");
    await openssl(
      "x509",
      "-req",
      "-in",
      "nsqd.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
      "-out",
      "nsqd.pem",
    );
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    ca: await Deno.readFile(join(dir, "ca.pem")),
    certFile: join(dir, "nsqd.pem"),
    keyFile: join(dir, "nsqd.key"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * nsqd that only takes TLS clients. `--tls-required=tcp-https` rather than
 * `true`: with `true` nsqd also refuses plain HTTP, which the harness pings.
 */
function startTlsNsq(certificates: Certificates): Promise<NsqCluster> {
  return startNsq({
    lookupd: false,
    nsqdArgs: [
      `--tls-cert=${certificates.certFile}`,
      `--tls-key=${certificates.keyFile}`,
      "--tls-required=tcp-https",
      "--https-address=127.0.0.1:0",
    ],
  });
}

function tls(ca: Uint8Array | null, insecureSkipVerify = false): { tls: TlsOptions } {
  return { tls: { ca, cert: null, key: null, insecureSkipVerify } };
}

Deno.test("the user agent names the nsqworker and nsqjs versions", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("agent");
  await using reader = read(nsq, { topic });
  await waitFor(() => reader.events.includes("ready"), { message: "subscribed" });
  const [client] = await rawClients(nsq, topic);
  assert.equal(client?.user_agent, `nsqworker/${VERSION} nsqjs/${NSQJS_VERSION}`);
  assert.match(String(client?.user_agent), /^nsqworker\/\d+\.\d+\.\d+\S* nsqjs\/0\.13\.0$/);
});

Deno.test("TLS to 127.0.0.1 verifies a certificate for IP:127.0.0.1", async () => {
  using uncaught = trapUncaught();
  await using certificates = await makeCertificates("IP:127.0.0.1");
  await using nsq = await startTlsNsq(certificates);
  const topic = uniqueTopic("tls_ip");
  await nsq.publish(topic, "secret");
  await using reader = read(nsq, { topic, options: tls(certificates.ca) });
  await waitFor(() => reader.messages.length === 1 || reader.closedWith !== undefined, {
    message: "a message over TLS, or closed",
  });
  assert.deepEqual(reader.errors.map(String), []);
  assert.equal(text(reader.messages[0]!), "secret");
  reader.messages[0]!.finish();
  assert.equal((await rawClients(nsq, topic))[0]?.tls, true);
  assertNoUncaught(uncaught);
});

Deno.test("TLS refuses a certificate for another name, reporting the certificate error", async () => {
  using uncaught = trapUncaught();
  await using certificates = await makeCertificates("DNS:other.test");
  await using nsq = await startTlsNsq(certificates);
  const topic = uniqueTopic("tls_other");
  await using reader = read(nsq, { topic, options: tls(certificates.ca) });
  await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
  assert.ok(!reader.events.includes("ready"));
  assert.equal(
    (reader.closedWith as Error & { code?: string }).code,
    "ERR_TLS_CERT_ALTNAME_INVALID",
  );
  assert.match(String(reader.closedWith), /127\.0\.0\.1/, "checked against the host connected to");
  assertNoUncaught(uncaught);
});

Deno.test("TLS refuses a certificate from an unknown CA, and insecureSkipVerify accepts it", async () => {
  using uncaught = trapUncaught();
  await using certificates = await makeCertificates("DNS:other.test");
  await using nsq = await startTlsNsq(certificates);
  const topic = uniqueTopic("tls_ca");
  await nsq.publish(topic, "anyway");
  {
    await using reader = read(nsq, { topic, options: tls(null) });
    await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
    assert.ok(!reader.events.includes("ready"));
    assert.match(String(reader.closedWith), /certificate/i);
  }
  await using reader = read(nsq, { topic, options: tls(null, true) });
  await waitFor(() => reader.messages.length === 1, { message: "a message over TLS" });
  reader.messages[0]!.finish();
  assertNoUncaught(uncaught);
});

/** snappy is a Node-API addon (@napi-rs/snappy), which Deno loads only with --allow-ffi. */
const canLoadAddons = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

for (const compression of ["deflate", "snappy"] as const) {
  Deno.test({
    name: `${compression} compression works end to end and closes cleanly${
      compression === "snappy" && !canLoadAddons
        ? " (skipped: snappy is a Node-API addon, loaded only with --allow-ffi, which deno task test does not grant)"
        : ""
    }`,
    ignore: compression === "snappy" && !canLoadAddons,
  }, async () => {
    using uncaught = trapUncaught();
    await using nsq = await startNsq({ lookupd: false });
    const topic = uniqueTopic(compression);
    const bodies = Array.from({ length: 20 }, (_, i) => `${i} ${"compressible ".repeat(50)}`);
    await nsq.publishMany(topic, bodies);
    await using reader = read(nsq, {
      topic,
      rdy: 5,
      options: { compression },
      onMessage: (m) => m.finish(),
    });
    await waitFor(() => reader.messages.length === bodies.length, { message: "every message" });
    assert.deepEqual(reader.messages.map(text).sort(), [...bodies].sort());
    const [client] = await rawClients(nsq, topic);
    assert.equal(client?.[compression], true, `nsqd negotiated ${compression}`);
    await reader[Symbol.asyncDispose]();
    assert.deepEqual(reader.errors.map(String), []);
    assert.equal(reader.closedWith, null);
    // The end of the socket reaches the decompressor a moment after `closed`.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assertNoUncaught(uncaught);
    const channel = await channelOf(nsq, topic);
    assert.deepEqual([channel.depth, channel.in_flight_count, channel.requeue_count], [0, 0, 0]);
  });
}

Deno.test("a publishing connection closed by its idle timeout says so, as a reader's does", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  let closedWith: Error | null | undefined;
  const writer = new WriterConnection(
    HOST,
    nsqd.tcpPort,
    // nsqjs takes both in whole seconds.
    { ...PLAIN, heartbeatIntervalMs: 1_000, idleTimeoutMs: 2_000 },
    { closed: (error) => void (closedWith = error), error() {} },
  );
  const idle = new Error("no data from nsqd for 2 s (idle timeout)");
  try {
    await writer.ready;
    // A frozen nsqd: the connection stays open but nothing comes back, not
    // even heartbeats, so only the idle timeout ends it. SIGSTOP takes a
    // moment to stop every thread; until then nsqd could still answer.
    nsqd.suspend();
    await waitFor(async () => !await answersPing(nsqd.httpUrl), { message: "nsqd frozen" });
    await assert.rejects(writer.publish(uniqueTopic("writer_idle"), [encoder.encode("x")]), idle);
    await waitFor(() => closedWith !== undefined, { message: "closed reported" });
    assert.deepEqual(closedWith, idle);
    await assert.rejects(writer.publish("t", [encoder.encode("y")]), idle);
  } finally {
    nsqd.resume();
    writer.destroy();
  }
});

// Last in this file on purpose: when it fails, nsqjs's timer fires 5 s later,
// and would fail whichever test of this file runs then instead.
Deno.test("a connection closed while waiting for IDENTIFY's answer leaves no timer behind", async () => {
  // nsqjs starts a 5 s IDENTIFY timer on connect and clears it only when
  // IDENTIFY is answered; with the op sanitizer on, a leaked one fails this test.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const accepted = listener.accept();
  await using reader = read(null, {
    topic: uniqueTopic("identify"),
    port: (listener.addr as Deno.NetAddr).port,
  });
  const peer = await accepted;
  const buffer = new Uint8Array(4096);
  assert.ok(await peer.read(buffer), "nsqjs sent its magic and IDENTIFY");
  await reader.connection.close();
  await waitFor(() => reader.closedWith !== undefined, { message: "closed" });
  while (await peer.read(buffer) !== null) {
    // The rest of IDENTIFY, up to the end of the stream.
  }
  peer.close();
  listener.close();
});
