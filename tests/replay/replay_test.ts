/**
 * `nsqworker replay` against a real nsqd: dead letters made by the daemon
 * itself (decode, validate, permanent, max_attempts, a binary body), plus a
 * truncated one and a foreign message, replayed with and without filters.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../../src/cli/cli.ts";
import { replayDeadLetters } from "../../src/daemon/replay_dead_letters.ts";
import { deadLetterEnvelope } from "../../src/entry/dead_letter.ts";
import { PermanentError } from "../../src/mod.ts";
import { REPO_DIR } from "../helpers/daemon_process.ts";
import { envelope, prepareInProcess, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

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

Deno.test("replay with topic_prefix: a body goes back to its envelope's topic as written, --to gets the prefix, the page's replay too", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const prefix = "pfx_";
  const topic = uniqueTopic("replay_prefix");
  const other = uniqueTopic("replay_to");
  const yaml = `
nsq:
  nsqd_tcp_addresses: [${nsqd.tcpAddress}]
  nsqd_http_addresses: { "${nsqd.tcpAddress}": "${nsqd.httpUrl}" }
  topic_prefix: ${prefix}
defaults:
  max_attempts: 1
http:
  listen: null
workers:
  - { topic: ${topic}, channel: work, worker: test/worker }
`;
  const dead = `${prefix}${topic}.dead`;
  const workers = {
    "test/worker": { decode: "bytes" as const, handle: () => Promise.reject(new Error("down")) },
  };
  // A channel on each topic a body may go to, so that nsqd keeps what reaches it.
  await nsq.createChannel(`${prefix}${other}`, "check");
  await nsq.createChannel(`${prefix}${prefix}${topic}`, "check");
  await nsq.createChannel(dead, "replay");
  await nsq.createChannel(dead, "peek");
  {
    await using _daemon = await startInProcess({
      yaml,
      workers,
    });
    await nsq.publishMany(`${prefix}${topic}`, ["a", "b", "c", "d"]);
    await waitFor(async () => (await nsq.channel(dead, "replay"))?.depth === 4, {
      message: "4 dead letters",
    });
  }
  const [letter] = await nsq.readTopic(dead, 1, { channel: "peek" });
  assert.equal(envelope(letter!).topic, `${prefix}${topic}`, "the envelope names the nsqd topic");

  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "config.yaml");
    await Deno.writeTextFile(config, yaml);
    const work = async () => (await nsq.channel(`${prefix}${topic}`, "work"))!.message_count;
    const twice = async () =>
      (await nsq.channel(`${prefix}${prefix}${topic}`, "check"))!.message_count;

    const to = await replay(config, ["--from", `${topic}.dead`, "--to", other, "--limit", "1"]);
    assert.equal(count(to.stdout, "replayed"), 1, to.stderr);
    assert.equal((await nsq.channel(`${prefix}${other}`, "check"))!.message_count, 1);

    const back = await replay(config, ["--from", `${topic}.dead`, "--limit", "1"]);
    assert.equal(count(back.stdout, "replayed"), 1, back.stderr);
    assert.equal(await work(), 5, "the body went back to the topic its envelope names");
    assert.equal(await twice(), 0, "not to the prefix twice");

    // The page's "Replay these" runs replay() inside the daemon, on the nsqd dead letter topic.
    const prepared = await prepareInProcess(yaml, workers);
    const counts = await replayDeadLetters(prepared.config, {
      topics: [dead],
      reasons: [],
      workers: [],
      match: null,
    }, { debug() {}, info() {}, warning() {}, error() {} });
    assert.equal(counts.replayed, 2, JSON.stringify(counts));
    assert.equal(await work(), 7);
    assert.equal(await twice(), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
    // Without nsqd's stats the run cannot know it saw every dead letter: it says why and fails.
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.equal(count(unknown.stdout, "would replay"), 3);
    assert.match(unknown.stdout, /^left in channel +unknown/m);
    assert.equal(
      unknown.stderr,
      `nsqworker replay: the HTTP address of nsqd ${nsqd.tcpAddress} is unknown: no nsqlookupd ` +
        "is configured, and nsq.nsqd_http_addresses does not name it: what its channel holds is " +
        `unknown\nnsqworker replay: nsqd ${nsqd.tcpAddress}: nsqd's HTTP stats are unknown or did ` +
        "not answer: cannot tell whether every dead letter was seen\n",
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
      ["--from", "x.dead", "--show", "--dry-run"],
    ]
  ) {
    const result = await replay("config.yaml", args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^nsqworker: replay/);
  }
});

/** `n` dead letters of `topic`: reason `validate` for every third (`i % 3 === 0`), `permanent` for the rest. */
function envelopes(topic: string, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    deadLetterEnvelope({
      topic,
      channel: "work",
      worker: "test/worker",
      message: {
        id: i.toString(16).padStart(16, "0"),
        attempts: 1,
        timestamp: 0,
        body: encoder.encode(JSON.stringify({ i })),
      },
      reason: i % 3 === 0 ? "validate" : "permanent",
      error: `dead ${i}`,
    }));
}

/** A nsqd whose `dead` topic's `replay` channel holds `n` {@linkcode envelopes}, and a config. */
async function deadLetters(
  nsqdArgs: string[],
  n: number,
  config: (nsq: NsqCluster, topic: string) => string = daemonYaml,
) {
  const nsq = await startNsq({ nsqdArgs });
  const topic = uniqueTopic("replay");
  const dead = `${topic}.dead`;
  await nsq.createChannel(dead, "replay");
  await nsq.publishMany(dead, envelopes(topic, n));
  await waitFor(async () => (await nsq.channel(dead, "replay"))?.depth === n);
  const dir = await Deno.makeTempDir();
  const path = join(dir, "config.yaml");
  await Deno.writeTextFile(path, config(nsq, topic));
  return {
    nsq,
    topic,
    dead,
    config: path,
    async [Symbol.asyncDispose]() {
      await nsq.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Waits until nsqd holds exactly `n` dead letters in the channel, none in flight or deferred. */
async function assertLeft(nsq: NsqCluster, dead: string, n: number): Promise<void> {
  const left = async () => (await nsq.channel(dead, "replay"))!;
  await waitFor(async () => {
    const { depth, in_flight_count, deferred_count } = await left();
    return depth === n && in_flight_count === 0 && deferred_count === 0;
  }, {
    timeoutMs: 3000,
    message: `${n} dead letters back in the channel: ${JSON.stringify(await left())}`,
  });
}

Deno.test("replay sees each dead letter once, most of them on nsqd's disk queue, more than one connection holds", async () => {
  // A memory queue of 4: nsqd keeps the rest of the channel on disk and hands
  // out memory, disk and requeued messages in no fixed order. A max RDY of 20:
  // one connection cannot hold what a run leaves.
  await using run = await deadLetters(["--mem-queue-size=4", "--max-rdy-count=20"], 100);
  const { nsq, dead, config } = run;
  for (let i = 0; i < 3; i++) {
    const dry = await replay(config, ["--from", dead, "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(count(dry.stdout, "would replay"), 100, `dry run ${i}:\n${dry.stdout}`);
    assert.match(dry.stdout, /^ +34 {2}validate$/m);
    assert.equal(count(dry.stdout, "left in channel"), 100);
    await assertLeft(nsq, dead, 100);
  }

  const show = await replay(config, ["--from", dead, "--show", "--reason", "validate"]);
  assert.equal(show.code, 0, show.stderr);
  const shown = show.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(
    shown.map((envelope) => JSON.parse(envelope.body).i).toSorted((a, b) => a - b),
    Array.from({ length: 34 }, (_, i) => i * 3),
    "each validate dead letter printed once, envelope and body",
  );
  assert.ok(shown.every((envelope) => envelope.reason === "validate" && envelope.topic));
  assert.equal(count(show.stderr, "shown"), 34);
  assert.equal(count(show.stderr, "skipped by filter"), 66);
  await assertLeft(nsq, dead, 100);

  const validate = await replay(config, ["--from", dead, "--reason", "validate"]);
  assert.equal(validate.code, 0, validate.stderr);
  assert.equal(count(validate.stdout, "replayed"), 34, validate.stdout);
  assert.equal(count(validate.stdout, "skipped by filter"), 66);
  assert.equal(count(validate.stdout, "left in channel"), 66);
  assert.equal((await nsq.topic(run.topic))?.message_count, 34, "each published once");
  await assertLeft(nsq, dead, 66);

  const five = await replay(config, ["--from", dead, "--show", "--limit", "5"]);
  assert.equal(five.code, 0, five.stderr);
  assert.equal(five.stdout.trimEnd().split("\n").length, 5, five.stdout);
  await assertLeft(nsq, dead, 66);
  const rest = await replay(config, ["--from", dead, "--dry-run"]);
  assert.equal(count(rest.stdout, "would replay"), 66, rest.stdout);
});

Deno.test("replay FINs a dead letter only after its publish succeeded: publishes that fail leave every one", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  await using run = await deadLetters(
    ["--mem-queue-size=4"],
    20,
    (nsq, topic) => daemonYaml(nsq, topic).replace(nsq.nsqds[0]!.tcpAddress, `127.0.0.1:${port}`),
  );
  const { nsq, dead, config } = run;
  const failed = await replay(config, ["--from", dead]);
  assert.equal(failed.code, 1, failed.stderr);
  assert.equal(count(failed.stdout, "replayed"), 0, failed.stdout);
  assert.equal(count(failed.stdout, "failed"), 20);
  assert.match(
    failed.stdout,
    new RegExp(`^ +20 {2}cannot publish to .* at nsqd 127\\.0\\.0\\.1:${port}`, "m"),
  );
  assert.equal(count(failed.stdout, "left in channel"), 20);
  await assertLeft(nsq, dead, 20);
  const dry = await replay(config, ["--from", dead, "--dry-run"]);
  assert.equal(count(dry.stdout, "would replay"), 20, "each dead letter still whole");
});

Deno.test("replay TOUCHes what it holds past nsqd's message timeout", async () => {
  await using run = await deadLetters(["--msg-timeout=1s"], 18);
  const { nsq, dead, config } = run;
  // nsqd looks for timed out messages only in the channels it knew at its
  // last 5-second refresh: a deferred probe comes out once the channel is one.
  const probe = await fetch(`${nsq.nsqds[0]!.httpUrl}/pub?topic=${dead}&defer=100`, {
    method: "POST",
    body: "probe",
  });
  assert.equal(probe.status, 200, await probe.text());
  await waitFor(async () => {
    const { depth, deferred_count } = (await nsq.channel(dead, "replay"))!;
    return depth === 19 && deferred_count === 0;
  }, { timeoutMs: 8000, message: "nsqd scanning the channel" });
  // Six publishes at 4/s hold the thirteen others for about 1.3 s.
  const result = await replay(config, ["--from", dead, "--reason", "validate", "--rate", "4/s"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(count(result.stdout, "replayed"), 6, result.stdout);
  assert.equal(count(result.stdout, "skipped by filter"), 12);
  assert.equal(count(result.stdout, "foreign"), 1);
  await assertLeft(nsq, dead, 13);
  assert.equal((await nsq.channel(dead, "replay"))!.timeout_count, 0, "none timed out");
  assert.equal((await nsq.topic(run.topic))?.message_count, 6, "each published once");
});

/** `deno ARGS` in the repository, outside a terminal. */
async function deno(args: readonly string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...args],
    cwd: REPO_DIR,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("replay: a missing permission is one clear line and exit 2, without a prompt", async () => {
  const howTo = "run it as `deno run --allow-net --allow-read --allow-env main.ts replay …` " +
    "or `deno task replay …`";
  for (
    const [flags, missing] of [
      [[], "--allow-read --allow-env"],
      [["--allow-read"], "--allow-env"],
      // The repository's config.yaml names nsqlookupd at 127.0.0.1:4161.
      [["--allow-read", "--allow-env"], "--allow-net (to reach 127.0.0.1:4161)"],
    ] as const
  ) {
    const result = await deno(["run", ...flags, "main.ts", "replay", "--from", "x.dead"]);
    assert.equal(result.code, 2, `${flags}: ${result.stderr}`);
    assert.equal(result.stdout, "");
    assert.equal(result.stderr, `nsqworker replay: missing permission ${missing}; ${howTo}\n`);
  }
});

Deno.test("deno task replay runs with the permissions it names", async () => {
  await using run = await deadLetters([], 5);
  const result = await deno([
    "task",
    "--quiet",
    "replay",
    "-c",
    run.config,
    "--from",
    run.dead,
    "--dry-run",
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(count(result.stdout, "would replay"), 5, result.stdout);
});
