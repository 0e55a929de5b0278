/**
 * Asks nsqlookupd which nsqd carry a topic.
 *
 * @module
 */

import type { HostPort } from "../config/types.ts";

/** The producers of `topic` known to the lookupd at `baseUrl`; none if it does not know the topic. */
export async function lookupProducers(
  baseUrl: string,
  topic: string,
  timeoutMs = 5000,
): Promise<HostPort[]> {
  const url = `${baseUrl}/lookup?topic=${encodeURIComponent(topic)}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  if (response.status === 404) return []; // TOPIC_NOT_FOUND: nobody has published it yet
  if (!response.ok) {
    throw new Error(`${url} answered ${response.status}: ${text.slice(0, 200)}`);
  }
  return parseProducers(url, text);
}

/**
 * One nsqd as nsqlookupd lists it. The types are what nsqlookupd sends, not
 * checked: each field is checked where it is read.
 */
export interface ListedProducer {
  readonly broadcast_address: string;
  readonly hostname: string;
  /** The address it registered from, e.g. `127.0.0.1:51234`. */
  readonly remote_address: string;
  readonly tcp_port: number;
  readonly http_port: number;
}

/**
 * The `producers` list of an nsqlookupd answer to `url` (`/lookup`,
 * `/nodes`), each as given; throws when `text` holds none.
 */
export function producersIn(url: string, text: string): ListedProducer[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered with something that is not JSON: ${text.slice(0, 200)}`);
  }
  // nsqlookupd before 1.0 wrapped the answer in {status_code, data}.
  const body = (data as { data?: unknown })?.data ?? data;
  const producers = (body as { producers?: unknown })?.producers;
  if (!Array.isArray(producers)) {
    throw new Error(`${url} answered without a producers list: ${text.slice(0, 200)}`);
  }
  return producers;
}

function parseProducers(url: string, text: string): HostPort[] {
  const found: HostPort[] = [];
  for (const producer of producersIn(url, text)) {
    const host = producer?.broadcast_address ?? producer?.hostname;
    const port = producer?.tcp_port;
    if (typeof host === "string" && host !== "" && Number.isInteger(port)) {
      found.push({ host, port });
    }
  }
  return found;
}
