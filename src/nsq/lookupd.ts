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

function parseProducers(url: string, text: string): HostPort[] {
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
  const found: HostPort[] = [];
  for (const producer of producers) {
    const host = producer?.broadcast_address ?? producer?.hostname;
    const port = producer?.tcp_port;
    if (typeof host === "string" && host !== "" && Number.isInteger(port)) {
      found.push({ host, port });
    }
  }
  return found;
}
