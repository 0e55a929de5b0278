/**
 * The pieces shared by the admin-abuse tests (fast, in tests/reliability/)
 * and their soak (soak/): an in-process daemon consuming from a real nsqd,
 * serving its admin HTTP surface, and the abusive clients.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LogLevel } from "../../src/config/types.ts";
import { type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { Ledger } from "./ledger.ts";

/** The channel the daemon consumes. */
export const CHANNEL = "work";
/** The configured http.token. */
export const TOKEN = "the-right-token";
/** The warning a wrong token leaves (rate-limited). */
export const WRONG_TOKEN_WARNING = "HTTP request refused: wrong token";

/** Options of {@linkcode setupAdmin}. */
export interface AdminSetupOptions {
  /** Extra nsqd flags, e.g. a memory queue big enough for a backlog. */
  readonly nsqdArgs?: readonly string[];
  /**
   * Whether the ledger records each id. Default true; a soak of millions of
   * messages only counts handler runs.
   */
  readonly track?: boolean;
  /** The daemon's lowest log level. Default "debug" (see startInProcess). */
  readonly logLevel?: LogLevel;
}

/** The daemon under abuse, with what the tests look at. */
export interface AdminSetup extends AsyncDisposable {
  readonly nsq: NsqCluster;
  readonly topic: string;
  readonly ledger: Ledger;
  readonly daemon: InProcessDaemon;
  /** `host:port` of the admin server. */
  readonly address: { readonly hostname: string; readonly port: number };
  /** `http://host:port`. */
  readonly base: string;
  /** Handler runs so far. */
  readonly runs: number;
}

/** Starts nsqd, the daemon (max_in_flight 100) and its admin HTTP server. */
export async function setupAdmin(options: AdminSetupOptions = {}): Promise<AdminSetup> {
  const track = options.track ?? true;
  const nsq = await startNsq({ lookupd: false, nsqdArgs: options.nsqdArgs ?? [] });
  const topic = uniqueTopic("admin");
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  let runs = 0;
  const daemon = await startInProcess({
    yaml: [
      "nsq:",
      `  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]`,
      "http:",
      "  listen: 127.0.0.1:0",
      `  token: ${TOKEN}`,
      "workers:",
      `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: 100 }`,
      "",
    ].join("\n"),
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    workers: {
      rec: {
        decode: "text",
        handle: (id: string) => {
          runs++;
          if (track) ledger.handled(id);
        },
      },
    },
  });
  const { host: hostname, port } = daemon.http!.address;
  return {
    nsq,
    topic,
    ledger,
    daemon,
    address: { hostname, port },
    base: `http://${daemon.http!.addressText}`,
    get runs() {
      return runs;
    },
    async [Symbol.asyncDispose]() {
      await daemon.shutdown();
      await nsq.close();
    },
  };
}

/** Log records of the daemon with message `msg`. */
export function logLines(daemon: InProcessDaemon, msg: string): Record<string, unknown>[] {
  return daemon.logs.filter((record) => record.msg === msg);
}

/** Pollers started by {@linkcode startPolling}. */
export interface Polling {
  /** Stops them and gives the requests answered and their rate per second. */
  stop(): Promise<{ requests: number; perSecond: number }>;
}

/**
 * Polls `/metrics` and `/stats` at `perSecond` requests in all, from four
 * paced loops (an over-eager scraper); every answer must be 200.
 */
export function startPolling(base: string, perSecond: number): Polling {
  const loops = 4;
  const gapMs = (1000 * loops) / perSecond;
  let requests = 0;
  let polling = true;
  const poll = async (path: string) => {
    for (let next = performance.now(); polling; next += gapMs) {
      const response = await fetch(`${base}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, 200, `${path} answered ${response.status}`);
      requests++;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, next + gapMs - performance.now()))
      );
    }
  };
  const started = performance.now();
  const pollers = [poll("/metrics"), poll("/stats"), poll("/metrics"), poll("/stats")];
  return {
    async stop() {
      polling = false;
      await Promise.all(pollers);
      return { requests, perSecond: requests / ((performance.now() - started) / 1000) };
    },
  };
}

/**
 * Opens `count` connections that each send the start of a request and then
 * nothing more; closing the returned object closes them.
 */
export async function holdHalfSentRequests(
  address: AdminSetup["address"],
  count: number,
): Promise<Disposable & { readonly held: number }> {
  const held: Deno.TcpConn[] = [];
  const close = () => {
    for (const conn of held) conn.close();
  };
  try {
    for (let i = 0; i < count; i++) {
      const conn = await Deno.connect(address);
      held.push(conn);
      await conn.write(new TextEncoder().encode(`GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow-${i}: `));
    }
  } catch (error) {
    close();
    throw error;
  }
  return { held: held.length, [Symbol.dispose]: close };
}

/** Milliseconds one GET /ping takes; it must answer OK. */
export async function pingMs(base: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${base}/ping`);
  assert.equal(await response.text(), "OK");
  return performance.now() - started;
}

/** 10 MiB, sent from one reused 1 MiB chunk, so that only the server could grow. */
const BIG_CHUNK = new Uint8Array(1024 * 1024);
/** Chunks in a big body. */
export const BIG_CHUNKS = 10;
/** Bytes in a big body. */
export const BIG_BODY_BYTES: number = BIG_CHUNKS * BIG_CHUNK.length;

/**
 * POSTs a 10 MiB body to the pause endpoint with `headers`, each chunk
 * framed by `frame`; gives the status line of the answer and the MiB sent
 * before the server closed its side.
 */
export async function postBigBody(
  s: Pick<AdminSetup, "address" | "topic">,
  headers: string,
  frame: (chunk: Uint8Array) => Uint8Array[] = (chunk) => [chunk],
  end: Uint8Array[] = [],
): Promise<{ status: string; sentMiB: number }> {
  using conn = await Deno.connect(s.address);
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

/**
 * POSTs to the pause endpoint with a different wrong token each time,
 * `attempts` times from four clients; gives how many were refused with 401.
 */
export async function guessTokens(s: Pick<AdminSetup, "base" | "topic">, attempts: number) {
  const clients = 4;
  let refused = 0;
  const url = `${s.base}/entries/${s.topic}/${CHANNEL}/pause`;
  const client = async (from: number) => {
    for (let i = from; i < attempts; i += clients) {
      const response = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer guess-${i}` },
      });
      await response.body?.cancel();
      if (response.status === 401) refused++;
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, from) => client(from)));
  return refused;
}
