/**
 * Which nsqd a consumer connects to: its direct addresses, and those that
 * nsqlookupd lists for its topic, asked again at every poll interval. Each
 * is kept connected, with a growing delay between attempts, until
 * nsqlookupd no longer lists it. What goes over the connections is the
 * consumer's (consumer.ts).
 *
 * @module
 */

import type { HostPort } from "../config/types.ts";
import type { Logger } from "../worker/worker.ts";
import { formatHostPort } from "../config/address.ts";
import { lookupProducers } from "./lookupd.ts";
import type { ReaderConnection } from "./reader_connection.ts";
import { asError, errorText } from "../error_text.ts";
import { NO_JITTER, retryDelay } from "../backoff.ts";

/** Timings of discovery and reconnection. */
export interface DiscoveryTimings {
  /** How often each nsqlookupd is asked for the topic's nsqd. */
  readonly lookupdPollIntervalMs: number;
  /** First reconnect delay; doubles per failure up to `reconnectMaxMs`. */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

/** The default timings; they suit production. */
export const DEFAULT_DISCOVERY_TIMINGS: DiscoveryTimings = Object.freeze({
  lookupdPollIntervalMs: 15_000,
  reconnectMinMs: 1_000,
  reconnectMaxMs: 30_000,
});

/** A connection to one nsqd, as discovery sees it. */
export interface NsqdLink {
  readonly connection: ReaderConnection;
}

/** One nsqd that discovery knows of: a direct one, or one nsqlookupd listed. */
export interface KnownNsqd {
  readonly host: string;
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  readonly direct: boolean;
  /** Named by the last lookupd answer. */
  listed: boolean;
  /** The current connection; null while there is none. */
  link: NsqdLink | null;
  /** Attempts failed since the last connection that subscribed. */
  failures: number;
  retry: ReturnType<typeof setTimeout> | null;
  /** Was connected once: the next connection is a reconnection. */
  wasConnected: boolean;
}

/** What discovery needs; `N` is what its user keeps per nsqd. */
export interface DiscoveryOptions<N extends KnownNsqd> {
  /** The topic on nsqd (with `topic_prefix`). */
  readonly topic: string;
  readonly nsqdAddresses: readonly HostPort[];
  readonly lookupdUrls: readonly string[];
  readonly log: Logger;
  readonly timings: DiscoveryTimings;
  /** `nsqd`, newly known, with what the user keeps per nsqd added. */
  track(nsqd: KnownNsqd): N;
  /**
   * A connection to `nsqd`, not opened yet, whose `ready` goes to
   * {@linkcode Discovery.connected} and `closed` to
   * {@linkcode Discovery.closed}. Throws when nsqjs refuses the options.
   */
  open(nsqd: N): NonNullable<N["link"]>;
}

/** The nsqd of one consumer, found and kept connected. */
export class Discovery<N extends KnownNsqd> {
  #options: DiscoveryOptions<N>;
  #nsqds = new Map<string, N>();
  #started = false;
  #stopping = false;
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  #lookupdFailing = false;
  /** Some nsqlookupd has answered: until then, nobody knows which nsqd carry the topic. */
  #lookupdAnswered = false;

  constructor(options: DiscoveryOptions<N>) {
    this.#options = options;
  }

  /** Connects to the direct nsqd and starts asking nsqlookupd. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const { host, port } of this.#options.nsqdAddresses) {
      const nsqd = this.#nsqd(host, port, true);
      this.#connect(nsqd);
    }
    if (this.#options.lookupdUrls.length > 0) void this.#poll();
  }

  /** Stops asking nsqlookupd and reconnecting; the connections stay as they are. */
  stop(): void {
    this.#stopping = true;
    if (this.#pollTimer !== null) clearTimeout(this.#pollTimer);
    this.#pollTimer = null;
    for (const nsqd of this.#nsqds.values()) {
      if (nsqd.retry !== null) clearTimeout(nsqd.retry);
      nsqd.retry = null;
    }
  }

  /** Every nsqd known now, connected or not. */
  nsqds(): IterableIterator<N> {
    return this.#nsqds.values();
  }

  /**
   * Why not every nsqd is subscribed, or null when they are: each nsqd
   * known (direct, or listed by the last nsqlookupd answer) must be, and
   * with nsqlookupd configured one must have answered. A topic that no nsqd
   * has yet is thus ready once nsqlookupd said so.
   */
  notReadyReason(): string | null {
    if (this.#options.lookupdUrls.length > 0 && !this.#lookupdAnswered) {
      return "no nsqlookupd has answered yet";
    }
    const missing: string[] = [];
    for (const nsqd of this.#nsqds.values()) {
      if ((nsqd.direct || nsqd.listed) && !nsqd.link?.connection.isReady) {
        missing.push(nsqd.address);
      }
    }
    return missing.length === 0 ? null : `not subscribed on nsqd ${missing.join(", ")}`;
  }

  /** `nsqd`'s connection has subscribed: its backoff starts over. */
  connected(nsqd: KnownNsqd): void {
    const again = nsqd.wasConnected;
    nsqd.failures = 0;
    nsqd.wasConnected = true;
    this.#options.log.info(again ? "reconnected to nsqd" : "connected to nsqd", {
      nsqd: nsqd.address,
    });
  }

  /**
   * `link`, a connection of `nsqd`, is gone (`error` says why when known):
   * returns false when it was no longer `nsqd`'s current one; otherwise
   * `nsqd` is retried after its backoff, or forgotten.
   */
  closed(nsqd: N, link: NsqdLink, error: Error | null): boolean {
    if (nsqd.link !== link) return false;
    nsqd.link = null;
    this.#reconnectLater(nsqd, error);
    return true;
  }

  #nsqd(host: string, port: number, direct: boolean): N {
    const address = formatHostPort({ host, port });
    let nsqd = this.#nsqds.get(address);
    if (!nsqd) {
      nsqd = this.#options.track({
        host,
        port,
        address,
        direct,
        listed: false,
        link: null,
        failures: 0,
        retry: null,
        wasConnected: false,
      });
      this.#nsqds.set(address, nsqd);
    }
    return nsqd;
  }

  #connect(nsqd: N): void {
    if (this.#stopping || nsqd.link !== null) return;
    let link: NonNullable<N["link"]>;
    try {
      link = this.#options.open(nsqd);
    } catch (error) {
      // nsqjs checks its options as it builds a connection (snappy needs its
      // Node-API addon, so --allow-ffi); a throw here would escape a timer or
      // the lookupd poll and end the process.
      this.#reconnectLater(nsqd, asError(error));
      return;
    }
    nsqd.link = link;
    link.connection.connect();
  }

  /** Retries `nsqd` after its backoff; forgets it when nsqlookupd no longer lists it. */
  #reconnectLater(nsqd: N, error: Error | null): void {
    if (this.#stopping) return;
    const { address } = nsqd;
    const { log, timings } = this.#options;
    if (!nsqd.direct && !nsqd.listed) {
      this.#nsqds.delete(address);
      log.info("nsqd is gone and no longer listed by nsqlookupd", { nsqd: address });
      return;
    }
    nsqd.failures++;
    const { reconnectMinMs, reconnectMaxMs } = timings;
    const delay = retryDelay(nsqd.failures, reconnectMinMs, reconnectMaxMs, NO_JITTER);
    log.warning("nsqd connection lost; reconnecting", {
      nsqd: address,
      error: error?.message ?? "closed",
      delay_ms: delay,
      failures: nsqd.failures,
    });
    if (nsqd.retry !== null) clearTimeout(nsqd.retry);
    nsqd.retry = setTimeout(() => {
      nsqd.retry = null;
      this.#connect(nsqd);
    }, delay);
  }

  async #poll(): Promise<void> {
    const { topic, lookupdUrls, log, timings } = this.#options;
    const answers = await Promise.allSettled(
      lookupdUrls.map((url) => lookupProducers(url, topic)),
    );
    if (this.#stopping) return;
    const found = new Set<string>();
    let answered = 0;
    for (const [i, answer] of answers.entries()) {
      if (answer.status === "fulfilled") {
        answered++;
        for (const { host, port } of answer.value) {
          found.add(formatHostPort({ host, port }));
          this.#nsqd(host, port, false);
        }
      } else if (!this.#lookupdFailing) {
        log.warning("nsqlookupd did not answer", {
          lookupd: lookupdUrls[i],
          error: errorText(answer.reason),
        });
      }
    }
    // With every lookupd down, keep what we have: direct connections and the
    // nsqd found before go on working until lookupd is back.
    this.#lookupdFailing = answered === 0;
    if (answered > 0) {
      this.#lookupdAnswered = true;
      for (const [address, nsqd] of this.#nsqds) {
        if (nsqd.direct) continue;
        nsqd.listed = found.has(address);
        // An nsqd waiting out its reconnect backoff keeps waiting.
        if (nsqd.listed && nsqd.retry === null) this.#connect(nsqd);
        else if (nsqd.link === null) {
          if (nsqd.retry !== null) clearTimeout(nsqd.retry);
          this.#nsqds.delete(address);
        }
      }
    }
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      void this.#poll();
    }, timings.lookupdPollIntervalMs);
  }
}
