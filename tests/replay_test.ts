/**
 * `nsqworker replay` against a real nsqd: dead letters made by the daemon
 * itself (decode, validate, permanent, max_attempts, a binary body), plus a
 * truncated one and a foreign message, replayed with and without filters.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../src/cli/cli.ts";
import { deadLetterEnvelope } from "../src/entry/dead_letter.ts";
import { PermanentError } from "../src/mod.ts";
import { startInProcess } from "./helpers/in_process.ts";
import { type NsqCluster, startNsq, uniqueTopic, waitFor } from "./helpers/nsq.ts";

const encoder = new TextEncoder();
const hex = (bytes: Uint8Array) => bytes.toHex();

function daemonYaml(nsq: NsqCluster, topic: string): string {
  return `
nsq:
  lookupd_http_addresses: [${nsq.lookupd!.httpUrl}]
  publish_nsqd_tcp_address: ${nsq.nsqds[0]!.tcpAddress}
defaults:
  max_attempts: 1
http:
  listen: null
workers:
  - topic: ${topic}
    channel: work
    worker: test/worker
`;
}

/** 200 bodies, each dead for a known reason under the buggy worker below. */
function originalBodies(): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < 49; i++) bodies.push(encoder.encode(`{"kind": broken ${i}`));
  bodies.push(new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0x01])); // not UTF-8: a base64 envelope
  for (let i = 0; i < 50; i++) bodies.push(encoder.encode(JSON.stringify({ kind: "invalid", i })));
  for (let i = 0; i < 50; i++) {
    bodies.push(encoder.encode(JSON.stringify({ kind: "permanent", i, why: i % 2 ? "a" : "b" })));
  }
  for (let i = 0; i < 50; i++) bodies.push(encoder.encode(JSON.stringify({ kind: "fail", i })));
  return bodies;
}

type Body = { kind: string; i: number; why?: string };

const buggyWorker = {
  validate: (body: Body) => body.kind !== "invalid",
  handle(body: Body) {
    if (body.kind === "permanent") {
      throw new PermanentError(`refund ${body.why === "a" ? "declined" : "refused"}`);
    }
    throw new Error("upstream answered 503\nat line two");
  },
};

async function replay(config: string, args: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(["replay", "-c", config, ...args], {
    out: (text) => stdout += text,
    err: (text) => stderr += text,
  });
  return { code, stdout, stderr };
}

function count(summary: string, label: string): number {
  const match = new RegExp(`^${label} +(\\d+)`, "m").exec(summary);
  assert.ok(match, `no "${label}" in:\n${summary}`);
  return Number(match[1]);
}

Deno.test("replay: dry run, filters, limit, then every body back on its topic, byte for byte", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("replay");
  const dead = `${topic}.dead`;
  const originals = originalBodies();

  // The daemon with a bug makes the dead letters.
  {
    await using _daemon = await startInProcess({
      yaml: daemonYaml(nsq, topic),
      workers: { "test/worker": buggyWorker },
    });
    await nsq.publishMany(topic, originals);
    await waitFor(async () => (await nsq.topic(dead))?.message_count === 200, {
      message: "200 dead letters",
    });
  }
  await nsq.publish(
    dead,
    deadLetterEnvelope({
      topic,
      channel: "work",
      worker: "test/worker",
      message: { id: "0123456789abcdef", attempts: 1, timestamp: 0, body: new Uint8Array(4000) },
      reason: "max_attempts",
      error: "too big",
      maxBytes: 1000,
    }),
  );
  await nsq.publish(dead, "not a dead letter of ours");
  await waitFor(async () => (await nsq.topic(dead))?.depth === 202);

  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "config.yaml");
    await Deno.writeTextFile(
      config,
      daemonYaml(nsq, topic).replace("test/worker", "demo/pageview"),
    );
    const work = async () => (await nsq.channel(topic, "work"))!;

    const dry = await replay(config, ["--from", dead, "--dry-run"]);
    console.log(`replay --dry-run:\n${dry.stdout}`);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(count(dry.stdout, "would replay"), 200);
    assert.equal(count(dry.stdout, "truncated"), 1);
    assert.equal(count(dry.stdout, "foreign"), 1);
    assert.equal(count(dry.stdout, "left in channel"), 202);
    for (const reason of ["decode", "validate", "permanent", "max_attempts"]) {
      assert.match(dry.stdout, new RegExp(`^ +50  ${reason}$`, "m"));
    }
    assert.match(dry.stdout, /^ +200 {2}test\/worker$/m);
    assert.match(dry.stdout, /^ +50 {2}upstream answered 503$/m);
    assert.match(dry.stdout, /^ +25 {2}refund declined$/m);
    assert.equal((await work()).message_count, 200, "the dry run published nothing");

    const declined = await replay(config, [
      "--from",
      dead,
      "--reason",
      "permanent",
      "--match",
      "declined",
    ]);
    assert.equal(declined.code, 0, declined.stderr);
    assert.equal(count(declined.stdout, "replayed"), 25);
    assert.equal(count(declined.stdout, "skipped by filter"), 175);
    assert.equal(count(declined.stdout, "left in channel"), 177);

    const limited = await replay(config, [
      "--from",
      dead,
      "--reason",
      "validate",
      "--limit",
      "10",
      "--rate",
      "2000/s",
    ]);
    assert.equal(limited.code, 0, limited.stderr);
    assert.equal(count(limited.stdout, "replayed"), 10);
    assert.equal(count(limited.stdout, "left in channel"), 167);

    const rest = await replay(config, ["--from", dead]);
    console.log(`replay:\n${rest.stdout}`);
    assert.equal(rest.code, 0, rest.stderr);
    assert.equal(count(rest.stdout, "replayed"), 165);
    assert.equal(count(rest.stdout, "skipped by filter"), 0);
    assert.equal(count(rest.stdout, "truncated"), 1);
    assert.equal(count(rest.stdout, "foreign"), 1);
    assert.equal(count(rest.stdout, "failed"), 0);
    assert.equal(count(rest.stdout, "left in channel"), 2);

    const none = await replay(config, ["--from", dead, "--worker", "nobody"]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(count(none.stdout, "replayed"), 0);
    assert.equal(count(none.stdout, "left in channel"), 2);
    assert.equal((await work()).message_count, 400, "200 bodies published once each");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // The fixed daemon handles what came back: the very bytes first published.
  const handled: string[] = [];
  await using _fixed = await startInProcess({
    yaml: daemonYaml(nsq, topic),
    workers: {
      "test/worker": { decode: "bytes", handle: (b: Uint8Array) => void handled.push(hex(b)) },
    },
  });
  await waitFor(() => handled.length === 200, { message: "200 replayed bodies handled" });
  assert.deepEqual(handled.toSorted(), originals.map(hex).toSorted());
  assert.equal((await nsq.topic(dead))?.message_count, 202, "nothing dead-lettered again");
});

Deno.test("replay: a direct nsqd's HTTP address is the configured one, never its TCP port + 1", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  assert.notEqual(nsqd.httpPort, nsqd.tcpPort + 1, "the ports happen to be paired: run again");
  const topic = uniqueTopic("replay_direct");
  const dead = `${topic}.dead`;
  for (let i = 0; i < 3; i++) {
    await nsq.publish(
      dead,
      deadLetterEnvelope({
        topic,
        channel: "work",
        worker: "demo/pageview",
        message: {
          id: `000000000000000${i}`,
          attempts: 5,
          timestamp: 0,
          body: encoder.encode("{}"),
        },
        reason: "max_attempts",
        error: "upstream answered 503",
      }),
    );
  }
  const dir = await Deno.makeTempDir();
  try {
    const yaml = (http: string) => `
nsq:
  nsqd_tcp_addresses: [${nsqd.tcpAddress}]
${http}
workers:
  - topic: ${topic}
    channel: work
    worker: demo/pageview
`;
    const named = join(dir, "named.yaml");
    await Deno.writeTextFile(
      named,
      yaml(`  nsqd_http_addresses: { ${nsqd.tcpAddress}: ${nsqd.httpUrl} }`),
    );
    const counted = await replay(named, ["--from", dead, "--dry-run"]);
    assert.equal(counted.code, 0, counted.stderr);
    assert.equal(counted.stderr, "");
    assert.equal(count(counted.stdout, "would replay"), 3);
    assert.equal(count(counted.stdout, "left in channel"), 3);

    const unnamed = join(dir, "unnamed.yaml");
    await Deno.writeTextFile(unnamed, yaml(""));
    const unknown = await replay(unnamed, ["--from", dead, "--dry-run"]);
    assert.equal(unknown.code, 0, unknown.stderr);
    assert.equal(count(unknown.stdout, "would replay"), 3);
    assert.match(unknown.stdout, /^left in channel +unknown/m);
    assert.equal(
      unknown.stderr,
      `nsqworker replay: the HTTP address of nsqd ${nsqd.tcpAddress} is unknown: no nsqlookupd ` +
        "is configured, and nsq.nsqd_http_addresses does not name it: what its channel holds is " +
        "unknown\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay refuses bad flags with exit code 2", async () => {
  for (
    const args of [
      [],
      ["--from", "a b"],
      ["--from", "x.dead", "--limit", "0"],
      ["--from", "x.dead", "--rate", "fast"],
      ["--from", "x.dead", "--bogus"],
    ]
  ) {
    const result = await replay("config.yaml", args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^nsqworker: replay/);
  }
});
