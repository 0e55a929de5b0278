/**
 * Message bodies that are hard to take, through `nsqworker run` (debug logs
 * on, the worker logging every decoded body): binary, invalid UTF-8, NULs,
 * 1 MiB, 100 000 levels of nesting. Each is handled or dead-lettered with
 * reason `decode`; the daemon never crashes and its stdout stays JSON lines.
 */

import assert from "node:assert/strict";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { envelope, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { reportFigures } from "./ledger.ts";
import { Prng } from "./prng.ts";

const CHANNEL = "work";
const encoder = new TextEncoder();
const MIB = 1024 * 1024;
/** nsqd's default --max-msg-size. */
const NSQD_MAX_MSG_SIZE = MIB;

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** A JSON string value of `size` bytes in all. */
function jsonStringOf(size: number): Uint8Array {
  return encoder.encode(`"${"a".repeat(size - 2)}"`);
}

const DEEP = 100_000;

/** Bodies the worker must be handed, with the nesting depth it will measure. */
function handledBodies(): [string, Uint8Array, number][] {
  return [
    ["1 MiB JSON string", jsonStringOf(NSQD_MAX_MSG_SIZE), 0],
    ["100 000 nested arrays", encoder.encode("[".repeat(DEEP) + "]".repeat(DEEP)), DEEP],
    ["100 000 nested objects", encoder.encode('{"a":'.repeat(DEEP) + "1" + "}".repeat(DEEP)), DEEP],
    ["UTF-8 BOM before JSON", bytes(0xef, 0xbb, 0xbf, 0x7b, 0x7d), 1],
    ["a number beyond double", encoder.encode("1e999"), 0],
    ["a __proto__ key", encoder.encode('{"__proto__":{"polluted":true}}'), 2],
    ["escaped NUL and lone surrogate", encoder.encode('"a\\u0000b\\ud800"'), 0],
    ["astral characters", encoder.encode(JSON.stringify("𝄞😀".repeat(1000))), 0],
  ];
}

/** Bodies that cannot be decoded as JSON: dead letters with reason decode. */
function deadBodies(random: Prng): [string, Uint8Array][] {
  return [
    ["random binary", random.bytes(256)],
    ["a lone 0xff", bytes(0xff)],
    ["an overlong slash", bytes(0xc0, 0xaf)],
    ["an encoded surrogate", bytes(0xed, 0xa0, 0x80)],
    ["a cut multi-byte character", bytes(0x22, 0xe2, 0x82, 0x22)],
    ["a raw NUL in JSON", bytes(0x7b, 0x00, 0x7d)],
    ["only NULs", new Uint8Array(64)],
    ["unclosed nesting", encoder.encode("[".repeat(DEEP))],
    ["plain text", encoder.encode("hello, world")],
    ["JSON then garbage", encoder.encode('{"a":1} trailing')],
    ["half a MiB of invalid UTF-8", new Uint8Array(MIB / 2).fill(0x80)],
  ];
}

Deno.test("binary, invalid UTF-8, 1 MiB and 100 000-level bodies: handled or dead-lettered, the daemon unharmed", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("bodies");
  await nsq.createChannel(topic, CHANNEL);
  await nsq.createChannel(`${topic}.dead`, "check");
  const out = dir.join("sink.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "debug", format: "json" },
    http: { listen: null },
    workers: [{ topic, channel: CHANNEL, worker: "json_sink", options: { out } }],
  });
  await daemon.waitForLine((line) => line.includes('"msg":"connected to nsqd"'));

  // nsqd itself refuses an empty body, so none can reach a worker.
  await assert.rejects(nsq.publish(topic, new Uint8Array(0)), /MSG_EMPTY/);

  const handled = handledBodies();
  const dead = deadBodies(new Prng(11));
  for (const [, body] of [...handled, ...dead]) await nsq.publish(topic, body);

  const letters = (await nsq.readTopic(`${topic}.dead`, dead.length, {
    channel: "check",
    timeoutMs: 15_000,
  })).map(envelope);
  await waitFor(async () => (await dir.readLines("sink.txt")).length === handled.length, {
    message: "every decodable body handled",
  });

  const sunk = new Map(
    (await dir.readLines("sink.txt")).map((line) => line.split(" ") as [string, string]),
  );
  for (const [name, body, depth] of handled) {
    assert.equal(sunk.get(await sha256(body)), String(depth), name);
  }
  const byBody = new Map(letters.map((l) => [`${l.body_encoding}:${l.body}`, l]));
  for (const [name, body] of dead) {
    const utf8 = (() => {
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
      } catch {
        return null;
      }
    })();
    const key = utf8 === null ? `base64:${body.toBase64()}` : `utf8:${utf8}`;
    const letter = byBody.get(key);
    assert.ok(letter, `no dead letter carries the original body of: ${name}`);
    assert.equal(letter.reason, "decode", name);
    assert.match(String(letter.error), /not valid UTF-8|not JSON/, name);
    assert.ok(String(letter.error).length <= 1_000, `${name}: error cut to 1000 characters`);
  }
  await waitFor(async () => {
    const channel = await nsq.channel(topic, CHANNEL);
    return channel?.depth === 0 && channel.in_flight_count === 0;
  }, { message: "nothing left in nsqd" });

  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
  assert.deepEqual(daemon.stderr, []);
  for (const line of daemon.stdout) JSON.parse(line);
  const logged = daemon.stdout.filter((line) => line.includes('"msg":"json_sink: got"'));
  assert.equal(logged.length, handled.length, "every decoded body logged at debug");
  reportFigures("bad_bodies", {
    handled: handled.length,
    dead_lettered: letters.length,
    refused_by_nsqd: 1,
    largest_log_line_bytes: Math.max(...daemon.stdout.map((line) => line.length)),
  });
});

Deno.test("a body too large for a dead letter envelope is still dead-lettered, not requeued forever", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("too_big");
  await nsq.createChannel(topic, CHANNEL);
  await nsq.createChannel(`${topic}.dead`, "check");
  await using daemon = await startInProcess({
    yaml: `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\n` +
      `workers:\n  - { topic: ${topic}, channel: ${CHANNEL}, worker: w, requeue_delay: 10ms }\n`,
    workers: { w: { handle() {} } },
  });
  // As large as nsqd takes, and not JSON: the envelope (body + fields) is larger still.
  await nsq.publish(topic, new Uint8Array(NSQD_MAX_MSG_SIZE).fill(0x78));
  const stats = daemon.supervisor.entries[0]!.stats;
  await waitFor(() => {
    const { outcomes, deadLetterFailures } = stats.snapshot();
    return outcomes.dead >= 1 && (deadLetterFailures > 0 || stats.inFlight === 0);
  }, { message: "the message dead" });
  assert.equal(
    stats.snapshot().deadLetterFailures,
    0,
    "the dead letter was refused by nsqd (over --max-msg-size); the message is requeued and " +
      "comes back dead again at every attempt, without end",
  );
  const [letter] = await nsq.readTopic(`${topic}.dead`, 1, { channel: "check" });
  assert.equal(envelope(letter!).reason, "decode");
  await waitFor(async () => (await nsq.channel(topic, CHANNEL))?.depth === 0);
});
