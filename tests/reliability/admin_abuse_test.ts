/**
 * The admin HTTP surface under abuse while the daemon consumes (fast
 * versions of the soak's): `/metrics` and `/stats` polled hard, a slowloris
 * client holding half-sent requests, a 10 MiB body to a pause endpoint and a
 * wrong token over and over.
 */

import assert from "node:assert/strict";
import { createHandler } from "../../src/http/handler.ts";
import { startHttpServer } from "../../src/http/server.ts";
import { supervisorDeps } from "../../src/http/supervisor_deps.ts";
import { logger } from "../../src/log.ts";
import { type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import { startNsq, uniqueTopic, waitFor } from "../helpers/nsq.ts";
import { Ledger, makeIds, reportFigures } from "./ledger.ts";

const CHANNEL = "work";
const TOKEN = "the-right-token";

async function setup() {
  const nsq = await startNsq({ lookupd: false });
  const topic = uniqueTopic("admin");
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  const daemon = await startInProcess({
    yaml: [
      "nsq:",
      `  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]`,
      "workers:",
      `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: 100 }`,
      "",
    ].join("\n"),
    workers: { rec: { decode: "text", handle: (id: string) => ledger.handled(id) } },
  });
  const server = startHttpServer(
    createHandler(
      supervisorDeps(daemon.supervisor, {
        version: "test",
        startedAt: Date.now(),
        token: TOKEN,
        log: logger("http"),
      }),
    ),
    { host: "127.0.0.1", port: 0 },
  );
  const base = `http://${server.addressText}`;
  return {
    nsq,
    topic,
    ledger,
    daemon,
    server,
    base,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await daemon.shutdown();
      await nsq.close();
    },
  };
}

/** Publishes `count` ids at once and resolves with the messages handled per second. */
async function throughput(
  s: { nsq: Awaited<ReturnType<typeof startNsq>>; topic: string; ledger: Ledger },
  prefix: string,
  count: number,
): Promise<number> {
  const ids = makeIds(prefix, count);
  const before = s.ledger.distinctHandled;
  await s.nsq.publishMany(s.topic, ids);
  s.ledger.published(ids);
  const started = performance.now();
  await waitFor(() => s.ledger.distinctHandled >= before + count, {
    intervalMs: 5,
    timeoutMs: 30_000,
    message: `${count} handled`,
  });
  return count / ((performance.now() - started) / 1000);
}

function warnings(daemon: InProcessDaemon, msg: string) {
  return daemon.logs.filter((record) => record.msg === msg);
}

Deno.test("/metrics and /stats polled 1,000 times/s while consuming: throughput near the quiet figure", async () => {
  await using s = await setup();
  await throughput(s, "w", 10_000);
  const quiet = await throughput(s, "q", 10_000);
  let requests = 0;
  let polling = true;
  // Four pollers at 250 requests/s each: the 1,000/s of an over-eager scraper.
  const poll = async (path: string) => {
    for (let next = performance.now(); polling; next += 4) {
      const response = await fetch(`${s.base}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      requests++;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, next + 4 - performance.now()))
      );
    }
  };
  const started = performance.now();
  const pollers = [poll("/metrics"), poll("/stats"), poll("/metrics"), poll("/stats")];
  const busy = await throughput(s, "b", 10_000);
  polling = false;
  await Promise.all(pollers);
  const rate = requests / ((performance.now() - started) / 1000);
  const ratio = busy / quiet;
  reportFigures("admin_polled", {
    quiet_msg_s: Math.round(quiet),
    polled_msg_s: Math.round(busy),
    ratio: Math.round(ratio * 100) / 100,
    requests_s: Math.round(rate),
    lost: s.ledger.lost().length,
  });
  assert.deepEqual(s.ledger.lost(10), []);
  // The goal is within 10 %; on a shared two-core machine only a collapse fails.
  assert.ok(ratio > 0.3, `throughput ${Math.round(busy)}/s polled vs ${Math.round(quiet)}/s quiet`);
});

Deno.test("a slowloris client holding 300 half-sent requests: the listener keeps answering others", async () => {
  await using s = await setup();
  const [host, port] = s.server.addressText.split(":") as [string, string];
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 300; i++) {
      const conn = await Deno.connect({ hostname: host, port: Number(port) });
      await conn.write(new TextEncoder().encode(`GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow-${i}: `));
      held.push(conn);
    }
    const started = performance.now();
    const response = await fetch(`${s.base}/ping`);
    assert.equal(await response.text(), "OK");
    const ms = Math.round(performance.now() - started);
    const speed = await throughput(s, "l", 5_000);
    reportFigures("admin_slowloris", { held: held.length, ping_ms: ms, msg_s: Math.round(speed) });
    assert.ok(ms < 2_000, `/ping took ${ms} ms with half-sent requests held`);
  } finally {
    for (const conn of held) conn.close();
  }
});

/** 10 MiB, sent from one reused 1 MiB chunk, so that only the server could grow. */
const BIG_CHUNK = new Uint8Array(1024 * 1024);
const BIG_CHUNKS = 10;

/**
 * POSTs a 10 MiB body to the pause endpoint with `headers`, each chunk
 * framed by `frame`; gives the status line of the answer and the MiB sent
 * before the server closed its side.
 */
async function postBigBody(
  s: { server: { addressText: string }; topic: string },
  headers: string,
  frame: (chunk: Uint8Array) => Uint8Array[],
  end: Uint8Array[] = [],
): Promise<{ status: string; sentMiB: number }> {
  const [host, port] = s.server.addressText.split(":") as [string, string];
  using conn = await Deno.connect({ hostname: host, port: Number(port) });
  const head = `POST /entries/${s.topic}/${CHANNEL}/pause HTTP/1.1\r\nHost: x\r\n${headers}` +
    `Connection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(head));
  const reply = readAll(conn);
  let sent = 0;
  try {
    for (; sent < BIG_CHUNKS; sent++) {
      for (const part of frame(BIG_CHUNK)) await writeAll(conn, part);
    }
    for (const part of end) await writeAll(conn, part);
  } catch {
    // Refused before the whole body was sent: the server closed its side.
  }
  return { status: (await reply).split("\r\n")[0]!, sentMiB: sent };
}

Deno.test("a 10 MiB body to a pause endpoint, with either token: 413 before reading it, memory flat", async () => {
  await using s = await setup();
  const rssBefore = Deno.memoryUsage().rss;
  const answers: string[] = [];
  const sentMiB: number[] = [];
  for (let i = 0; i < 6; i++) {
    const token = i % 2 === 0 ? TOKEN : "wrong";
    const size = BIG_CHUNKS * BIG_CHUNK.length;
    const { status, sentMiB: sent } = await postBigBody(
      s,
      `Authorization: Bearer ${token}\r\nContent-Length: ${size}\r\n`,
      (chunk) => [chunk],
    );
    answers.push(status);
    sentMiB.push(sent);
  }
  const grownMiB = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  reportFigures("admin_big_body", {
    answers,
    sent_mib: sentMiB,
    rss_growth_mib: Math.round(grownMiB),
  });
  assert.deepEqual(answers, Array(6).fill("HTTP/1.1 413 Payload Too Large"));
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  // Six 10 MiB bodies buffered would be 60 MiB.
  assert.ok(grownMiB < 20, `RSS grew ${grownMiB} MiB`);
});

Deno.test("a 10 MiB chunked body to a pause endpoint: 413 once past the bound, the rest unread", async () => {
  await using s = await setup();
  const rssBefore = Deno.memoryUsage().rss;
  const encoder = new TextEncoder();
  const answers: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { status } = await postBigBody(
      s,
      `Authorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n`,
      (
        chunk,
      ) => [encoder.encode(`${chunk.length.toString(16)}\r\n`), chunk, encoder.encode("\r\n")],
      [encoder.encode("0\r\n\r\n")],
    );
    answers.push(status);
  }
  const grownMiB = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  reportFigures("admin_big_chunked_body", { answers, rss_growth_mib: Math.round(grownMiB) });
  assert.deepEqual(answers, Array(3).fill("HTTP/1.1 413 Payload Too Large"));
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  assert.ok(grownMiB < 20, `RSS grew ${grownMiB} MiB`);
});

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      break;
    }
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return text;
}

Deno.test("a wrong token 2 000 times: all refused, warnings rate-limited", async () => {
  await using s = await setup();
  const attempts = 2_000;
  let refused = 0;
  const url = `${s.base}/entries/${s.topic}/${CHANNEL}/pause`;
  const worker = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const response = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer guess-${i}` },
      });
      await response.body?.cancel();
      if (response.status === 401) refused++;
    }
  };
  await Promise.all([worker(500), worker(500), worker(500), worker(500)]);
  const lines = warnings(s.daemon, "HTTP request refused: wrong token");
  reportFigures("admin_wrong_token", { attempts, refused, warning_lines: lines.length });
  assert.equal(refused, attempts);
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  assert.ok(lines.length >= 1, "a wrong token leaves no trace in the log");
  assert.ok(lines.length <= 5, `${lines.length} warning lines for ${attempts} wrong tokens`);
  const counted = lines.reduce((sum, line) => sum + Number(line.refused), 0);
  assert.ok(counted >= 1 && counted <= attempts);
});
