/**
 * Where an nsqd's HTTP API is, given its TCP address. Nothing pairs the two
 * ports (nsqd's defaults are 4150 and 4151, but any deployment may choose
 * others), so the HTTP address is never derived from the TCP port: the
 * config names it (`nsq.nsqd_http_addresses`), or an nsqlookupd the nsqd
 * registered with tells it (`/nodes` lists each nsqd's tcp_port and
 * http_port), or it is unknown and said so.
 *
 * @module
 */

import { formatHostPort, isLoopbackHost } from "../config/address.ts";
import type { HostPort, NsqConfig } from "../config/types.ts";
import { errorText } from "../error_text.ts";
import { type ListedProducer, producersIn } from "./lookupd.ts";

/** An nsqd's HTTP base URL, or why it is not known. */
export type NsqdHttp =
  | { readonly url: string }
  | { readonly url: null; readonly why: string };

/** How long each nsqlookupd is given to answer `/nodes`. */
const NODES_TIMEOUT_MS = 2000;

/**
 * The HTTP base URL the config gives for the nsqd at `nsqd`
 * (`nsq.nsqd_http_addresses`), or null.
 *
 * @example
 * ```ts
 * configuredNsqdHttp(config.nsq, { host: "127.0.0.1", port: 4150 }); // "http://127.0.0.1:4251"
 * ```
 */
export function configuredNsqdHttp(nsq: NsqConfig, nsqd: HostPort): string | null {
  const wanted = formatHostPort(nsqd);
  return nsq.nsqdHttpAddresses.find(({ tcp }) => formatHostPort(tcp) === wanted)?.http ?? null;
}

/**
 * The HTTP base URL of the nsqd at `nsqd`: from the config, else from the
 * first of the config's nsqlookupd that lists it; otherwise why it is unknown.
 *
 * @example
 * ```ts
 * const http = await nsqdHttpAddress(config.nsq, { host: "127.0.0.1", port: 4150 });
 * if (http.url === null) console.error(http.why);
 * ```
 */
export async function nsqdHttpAddress(nsq: NsqConfig, nsqd: HostPort): Promise<NsqdHttp> {
  const configured = configuredNsqdHttp(nsq, nsqd);
  if (configured !== null) return { url: configured };
  const problems: string[] = [];
  for (const lookupd of nsq.lookupdHttpAddresses) {
    try {
      const httpPort = findHttpPort(await nodes(lookupd), nsqd);
      if (httpPort !== null) {
        return { url: `http://${formatHostPort({ ...nsqd, port: httpPort })}` };
      }
    } catch (error) {
      problems.push(errorText(error));
    }
  }
  const lookupds = nsq.lookupdHttpAddresses.length === 0
    ? "no nsqlookupd is configured"
    : `no nsqlookupd lists it${problems.length > 0 ? ` (${problems.join("; ")})` : ""}`;
  return {
    url: null,
    why: `the HTTP address of nsqd ${formatHostPort(nsqd)} is unknown: ${lookupds}, ` +
      `and nsq.nsqd_http_addresses does not name it`,
  };
}

async function nodes(lookupd: string): Promise<ListedProducer[]> {
  const url = `${lookupd}/nodes`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(NODES_TIMEOUT_MS) });
  } catch (error) {
    throw new Error(`${url} did not answer: ${errorText(error)}`);
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 200)}`);
  return producersIn(url, text);
}

/**
 * The http_port of the producer at `nsqd`: same TCP port, and a host it is
 * known by (its broadcast address, its hostname, or the address it
 * registered from: an nsqd started without --broadcast-address broadcasts
 * its hostname, while the config names it by IP).
 */
function findHttpPort(producers: ListedProducer[], nsqd: HostPort): number | null {
  for (const producer of producers) {
    if (producer?.tcp_port !== nsqd.port || !Number.isInteger(producer.http_port)) continue;
    const hosts = [producer.broadcast_address, producer.hostname, remoteHost(producer)];
    if (hosts.some((host) => typeof host === "string" && sameHost(host, nsqd.host))) {
      return producer.http_port;
    }
  }
  return null;
}

/** The host of a producer's `remote_address` (`127.0.0.1:51234`, `[::1]:51234`). */
function remoteHost(producer: ListedProducer): string | null {
  const remote = producer.remote_address;
  if (typeof remote !== "string" || !remote.includes(":")) return null;
  return remote.slice(0, remote.lastIndexOf(":")).replace(/^\[|\]$/g, "");
}

function sameHost(a: string, b: string): boolean {
  return a === b || (isLoopbackHost(a) && isLoopbackHost(b));
}
