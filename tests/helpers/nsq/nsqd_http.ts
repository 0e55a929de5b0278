/**
 * nsqd's HTTP API as the harness uses it: ping, publish, create topics and
 * channels, read stats. Each call throws with nsqd's answer unless it is 2xx.
 *
 * @module
 */
import { type NsqdStats, parseStats } from "./nsqd_stats.ts";

/** Stays below nsqd's default `--max-body-size` of 5 MiB. */
const MPUB_BODY_LIMIT = 4 * 1024 * 1024;

const encoder = new TextEncoder();

/** Publishes one message over `/pub`. */
export async function publish(
  httpUrl: string,
  topic: string,
  body: string | Uint8Array,
): Promise<void> {
  const url = `${httpUrl}/pub?topic=${encodeURIComponent(topic)}`;
  await request("POST", url, `publish to topic "${topic}"`, body);
}

/** Publishes messages in order over `/mpub`, in as many requests as nsqd's body limit needs. */
export async function publishMany(
  httpUrl: string,
  topic: string,
  bodies: readonly (string | Uint8Array)[],
): Promise<void> {
  const url = `${httpUrl}/mpub?binary=true&topic=${encodeURIComponent(topic)}`;
  const messages = bodies.map((body) => typeof body === "string" ? encoder.encode(body) : body);
  let start = 0;
  while (start < messages.length) {
    // Binary MPUB: message count, then each message as size + bytes, all int32 big-endian.
    let size = 4;
    let end = start;
    while (end < messages.length) {
      const next = 4 + (messages[end]?.length ?? 0);
      // Always take one message, so an oversized one reaches nsqd and fails with its error.
      if (end > start && size + next > MPUB_BODY_LIMIT) break;
      size += next;
      end++;
    }
    const payload = new Uint8Array(size);
    const view = new DataView(payload.buffer);
    view.setInt32(0, end - start);
    let offset = 4;
    for (const message of messages.slice(start, end)) {
      view.setInt32(offset, message.length);
      payload.set(message, offset + 4);
      offset += 4 + message.length;
    }
    await request("POST", url, `publish ${end - start} messages to topic "${topic}"`, payload);
    start = end;
  }
}

/** Creates a topic over `/topic/create`. */
export async function createTopic(httpUrl: string, topic: string): Promise<void> {
  const url = `${httpUrl}/topic/create?topic=${encodeURIComponent(topic)}`;
  await request("POST", url, `create topic "${topic}"`);
}

/** Creates a channel, and its topic if needed. */
export async function createChannel(
  httpUrl: string,
  topic: string,
  channel: string,
): Promise<void> {
  // nsqd's /channel/create answers TOPIC_NOT_FOUND for a topic it does not have yet.
  await createTopic(httpUrl, topic);
  const url = `${httpUrl}/channel/create?topic=${encodeURIComponent(topic)}&channel=${
    encodeURIComponent(channel)
  }`;
  await request("POST", url, `create channel "${channel}" of topic "${topic}"`);
}

/** Reads `/stats?format=json`. */
export async function stats(httpUrl: string): Promise<NsqdStats> {
  return parseStats(await request("GET", `${httpUrl}/stats?format=json`, "read stats"));
}

/** Whether `GET /ping` answers OK; false while the server does not accept connections yet. */
export async function ping(httpUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${httpUrl}/ping`);
    return response.ok && (await response.text()) === "OK";
  } catch {
    // Not accepting connections yet.
    return false;
  }
}

/** Sends an HTTP request to nsqd and returns the body; throws with nsqd's answer unless 2xx. */
async function request(
  method: "GET" | "POST",
  url: string,
  action: string,
  body?: string | Uint8Array,
): Promise<string> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = toBodyInit(body);
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) {
    throw new Error(
      `Cannot ${action} as ${method} ${url} answered ${response.status}: ${text.trim()}`,
    );
  }
  return text;
}

/** fetch takes strings, and bytes only when backed by a plain ArrayBuffer. */
function toBodyInit(body: string | Uint8Array): string | Uint8Array<ArrayBuffer> {
  if (typeof body === "string" || body.buffer instanceof ArrayBuffer) {
    return body as string | Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(body);
}
