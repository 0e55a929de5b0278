/**
 * The NSQ that dev runs against: the config's nsqlookupd and nsqd, started
 * by dev when they are on loopback and down, found when they are up.
 *
 * @module
 */

import { formatHostPort, isLoopbackHost } from "../../src/config/address.ts";
import type { Config, HostPort } from "../../src/config/types.ts";
import { configuredNsqdHttp, nsqdHttpAddress } from "../../src/nsq/nsqd_http_address.ts";
import { nsqBin } from "../nsq_bin.ts";
import {
  answersPing,
  canListen,
  PROBE_TIMEOUT_MS,
  probeNsqd,
  probeNsqlookupd,
} from "../nsq_probe.ts";
import { createTopics } from "./create_topics.ts";
import { prefixLines } from "./prefix_lines.ts";

/** How long a daemon dev started is given to answer `GET /ping`. */
const START_TIMEOUT_MS = 10_000;

function httpUrl(address: HostPort): string {
  return `http://${formatHostPort(address)}`;
}

/** The host (IPv6 without brackets) and port of an HTTP base URL. */
function hostPortOf(url: string): HostPort {
  const { hostname, port, protocol } = new URL(url);
  return {
    host: hostname.replace(/^\[|\]$/g, ""),
    port: Number(port || (protocol === "https:" ? 443 : 80)),
  };
}

/**
 * nsqlookupd's "client(…) - EOF": nsqlookupd 1.3 logs every nsqd that
 * disconnects as an error, even one that leaves as it should. When dev
 * stops its own nsqd, that line only repeats what dev did.
 */
const NSQD_LEFT = /ERROR: client\([^)]*\) - EOF$/;

/** The nsqlookupd and nsqd that dev starts, when the config names them on loopback and they are down. */
export class LocalNsq {
  /** Whether NSQ is up: started by dev or found running. */
  ready = false;
  #children: { name: string; child: Deno.ChildProcess; output: Promise<void> }[] = [];
  #stopping = false;
  readonly #dataDir: URL;

  /** Its nsqd keeps its data under `dataDir`. */
  constructor(dataDir: URL) {
    this.#dataDir = dataDir;
  }

  async start(config: Config): Promise<void> {
    const lookupd = config.nsq.lookupdHttpAddresses.find((url) =>
      isLoopbackHost(hostPortOf(url).host)
    );
    const nsqd = config.nsq.publishNsqdTcpAddress ?? config.nsq.nsqdTcpAddresses[0] ??
      { host: "127.0.0.1", port: 4150 };
    const lookupdTcp = lookupd === undefined ? null : await this.#startNsqlookupd(lookupd);
    if (isLoopbackHost(nsqd.host)) {
      const http = await this.#startNsqd(config, nsqd, lookupdTcp);
      if (http !== null) {
        await createTopics(http, config);
        printHint(config, http);
      }
    }
    this.ready = true;
  }

  /**
   * Starts nsqlookupd at `url` unless one answers there, and returns the TCP
   * address nsqd registers at. nsqlookupd does not tell its TCP port, so it
   * is taken to be the HTTP port − 1, where dev starts its own.
   */
  async #startNsqlookupd(url: string): Promise<string> {
    const http = hostPortOf(url);
    const tcp = { ...http, port: http.port - 1 };
    const found = await probeNsqlookupd(url, http);
    if (found === "other") {
      throw new Error(
        `${formatHostPort(http)} (nsq.lookupd_http_addresses) is taken by something that is not ` +
          `nsqlookupd: it did not answer GET /nodes within ${PROBE_TIMEOUT_MS} ms`,
      );
    }
    if (found === "nothing") {
      if (!canListen(tcp)) {
        throw new Error(
          `${formatHostPort(tcp)}, where dev would start nsqlookupd's TCP port (its HTTP port ` +
            `${http.port} − 1), is taken by another program`,
        );
      }
      await this.#spawn("nsqlookupd", url, [
        `--http-address=${formatHostPort(http)}`,
        `--tcp-address=${formatHostPort(tcp)}`,
      ]);
    }
    return formatHostPort(tcp);
  }

  /**
   * Starts nsqd at `tcp` unless one answers there, and returns its HTTP base
   * URL; null when a running nsqd's is unknown (said in one line).
   */
  async #startNsqd(
    config: Config,
    tcp: HostPort,
    lookupdTcp: string | null,
  ): Promise<string | null> {
    const found = await probeNsqd(tcp);
    if (found === "other") {
      throw new Error(
        `${formatHostPort(tcp)} (the config's nsqd) is taken by something that is not nsqd: it ` +
          `did not answer NSQ's IDENTIFY within ${PROBE_TIMEOUT_MS} ms`,
      );
    }
    if (found === "nsqd") {
      const http = await nsqdHttpAddress(config.nsq, tcp);
      if (http.url !== null) return http.url;
      console.error(
        `dev: nsqd runs at ${formatHostPort(tcp)}, but ${http.why}: ` +
          "topics are not created ahead",
      );
      return null;
    }
    // dev's own nsqd: its HTTP address is the configured one, else its TCP port + 1 (nsqd's pairing).
    const url = configuredNsqdHttp(config.nsq, tcp) ?? httpUrl({ ...tcp, port: tcp.port + 1 });
    const http = hostPortOf(url);
    if (!canListen(http)) {
      throw new Error(
        `${formatHostPort(http)}, where dev would start the HTTP API of nsqd ` +
          `${formatHostPort(tcp)}, is taken by another program: name a free one in ` +
          "nsq.nsqd_http_addresses",
      );
    }
    const dataDir = new URL(`nsqd-${tcp.port}/`, this.#dataDir);
    await Deno.mkdir(dataDir, { recursive: true });
    await this.#spawn("nsqd", url, [
      `--tcp-address=${formatHostPort(tcp)}`,
      `--http-address=${formatHostPort(http)}`,
      `--broadcast-address=${tcp.host}`,
      `--data-path=${dataDir.pathname}`,
      ...(lookupdTcp ? [`--lookupd-tcp-address=${lookupdTcp}`] : []),
    ]);
    return url;
  }

  /**
   * Starts `name` in a session of its own: Ctrl-C reaches the terminal's
   * process group, and NSQ must outlive the daemon's drain (its FINs go to
   * nsqd). Its output, warnings and errors only, is prefixed with its name.
   */
  async #spawn(name: "nsqd" | "nsqlookupd", url: string, args: string[]): Promise<void> {
    const child = new Deno.Command(await nsqBin(name), {
      args: ["--log-level=warn", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    const shown = (line: string) =>
      !(this.#stopping && name === "nsqlookupd" && NSQD_LEFT.test(line));
    const output = Promise.all([
      prefixLines(child.stdout, name, shown),
      prefixLines(child.stderr, name, shown),
    ]).then(() => {});
    this.#children.push({ name, child, output });
    console.error(`dev: started ${name} (pid ${child.pid}) on ${url}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    let exited = false;
    child.status.then(() => exited = true);
    while (!(await answersPing(url))) {
      if (exited) throw new Error(`${name} exited before answering ${url}/ping`);
      if (Date.now() > deadline) {
        throw new Error(`${name} did not answer ${url}/ping within ${START_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Stops what dev started, after the daemon: nsqd first (it leaves
   * nsqlookupd), then nsqlookupd, waiting for each; says so in one line.
   */
  async stop(): Promise<void> {
    const started = this.#children.splice(0).reverse();
    if (started.length === 0) return;
    this.#stopping = true;
    for (const { child, output } of started) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await output;
    }
    const names = started.map(({ name, child }) => `${name} (pid ${child.pid})`);
    console.error(`dev: stopped the ${names.join(" and ")} it started`);
  }
}

/**
 * How to publish to the first entry: its topic on nsqd (topic_prefix
 * applied), through that nsqd's HTTP address.
 */
function printHint(config: Config, nsqdHttp: string): void {
  const entry = config.workers[0];
  if (entry === undefined) return;
  const body = entry.worker === "demo/pageview" ? '{"event_id":"e1","clicks":1}' : "hello";
  console.error(
    `dev: publish a test message to ${entry.worker} with\n` +
      `  curl -d '${body}' '${nsqdHttp}/pub?topic=${encodeURIComponent(entry.nsqTopic)}'`,
  );
}
