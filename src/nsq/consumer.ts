/**
 * A consumer: the nsqd connections of one entry (topic and channel), found
 * and kept alive by its discovery (discovery.ts), and given RDY so that the
 * messages in flight never exceed `max_in_flight`. The consumer alone
 * counts what is in flight (per connection and in all), plans RDY within
 * its intake limit (intake_limit.ts: the rate limit and the breaker's
 * admission) and holds the backlog; its connections only report.
 *
 * @module
 */

import type { HostPort, RateLimit } from "../config/types.ts";
import type { Logger } from "../worker/worker.ts";
import type { ConnectionOptions } from "./connection_options.ts";
import {
  DEFAULT_DISCOVERY_TIMINGS,
  Discovery,
  type DiscoveryTimings,
  type KnownNsqd,
  type NsqdLink,
} from "./discovery.ts";
import type { NsqMessage } from "./nsq_message.ts";
import { ReaderConnection } from "./reader_connection.ts";
import { planRdy, scarceSliceMs } from "./rdy_planner.ts";
import type { RateBucket } from "./rate_bucket.ts";
import { TokenBucket } from "./token_bucket.ts";
import { IntakeLimit } from "./intake_limit.ts";

/** Timings of discovery, reconnection and RDY; the defaults suit production. */
export interface ConsumerTimings extends DiscoveryTimings {
  /**
   * With fewer RDY than connections, a connection that has had no message
   * this long gives its RDY to one that has waited longer.
   */
  readonly rdyIdleMs: number;
  /**
   * How long a lowered RDY still counts at its old value before the slots
   * it freed go elsewhere: nsqd may send up to the old value until it has
   * read the new one.
   */
  readonly rdyLowerGraceMs: number;
}

/** The default timings. */
export const DEFAULT_TIMINGS: ConsumerTimings = Object.freeze({
  ...DEFAULT_DISCOVERY_TIMINGS,
  rdyIdleMs: 100,
  rdyLowerGraceMs: 50,
});

/** What a consumer needs. */
export interface ConsumerOptions {
  /** The topic on nsqd (with `topic_prefix`). */
  readonly topic: string;
  readonly channel: string;
  readonly maxInFlight: number;
  /** Messages taken per unit of time; enforced through RDY, never by holding messages. */
  readonly rateLimit?: RateLimit | null;
  /** Keeps the rate in place of a bucket of this process (a rate shared with other processes). */
  readonly rateBucket?: RateBucket;
  readonly nsqdAddresses: readonly HostPort[];
  readonly lookupdUrls: readonly string[];
  readonly connection: ConnectionOptions;
  readonly log: Logger;
  /** Every message delivered; its FIN/REQ is the receiver's to send. */
  readonly onMessage: (message: NsqMessage) => void;
  readonly timings?: Partial<ConsumerTimings>;
}

/** A consumer's connections as `/ready` and `/stats` see them. */
export interface ConsumerStatus {
  /** Addresses with a subscribed connection. */
  readonly connected: readonly string[];
  /** Addresses known (direct or discovered) but not connected now. */
  readonly disconnected: readonly string[];
  readonly paused: boolean;
  /** RDY currently given, summed over connections. */
  readonly rdy: number;
  /** Each nsqd known, with its connection's RDY and messages in flight. */
  readonly nsqds: readonly NsqdStatus[];
}

/** One nsqd of a consumer. */
export interface NsqdStatus {
  /** Its TCP address, `host:port`. */
  readonly address: string;
  /** Whether a subscribed connection to it is open. */
  readonly connected: boolean;
  /** RDY given on that connection; 0 without one. */
  readonly rdy: number;
  /** Messages it sent on that connection and not yet answered. */
  readonly inFlight: number;
}

/** An nsqd with its RDY bookkeeping, kept across its connections. */
interface Slot extends KnownNsqd {
  link: Link | null;
  /** RDY bookkeeping of the current connection, for the planner (ms, performance.now()). */
  grantedAt: number;
  releasedAt: number;
  activeAt: number;
  /** When RDY was last lowered below what nsqd could still send, and from what. */
  loweredAt: number;
  loweredFrom: number;
  /** Messages received on this slot, and the count the planner last saw. */
  received: number;
  receivedSeen: number;
}

/**
 * One connection of a slot with its messages received and unanswered.
 * Outlives the slot's hold on it while those are still being handled.
 */
interface Link extends NsqdLink {
  inFlight: number;
}

/** One entry's nsqd connections. */
export class Consumer {
  #options: ConsumerOptions;
  #timings: ConsumerTimings;
  #discovery: Discovery<Slot>;
  readonly #maxInFlight: number;
  #paused = false;
  #stopping = false;
  /** When scarce RDY is looked at again. */
  #rotateTimer: ReturnType<typeof setTimeout> | null = null;
  #rotateAt = Infinity;
  /** A backlog drain is queued. */
  #draining = false;
  /** Some connection has less RDY than its share, waiting for messages to be answered. */
  #short = false;
  /**
   * Messages received and not yet answered, on every connection (closed ones
   * included): those in the backlog, the rest handed to `onMessage`.
   */
  #inFlight = 0;
  /**
   * Messages that arrived while `max_in_flight` were running. Lowering a
   * connection's RDY takes effect only when nsqd reads it, and nsqd may send
   * up to the old RDY until then; these wait for a free slot (at most the
   * RDY just taken away) so that handlers never exceed `max_in_flight`.
   */
  #backlog: NsqMessage[] = [];
  /** The rate limit and the admission, within `max_in_flight`. */
  #intake: IntakeLimit;

  constructor(options: ConsumerOptions) {
    this.#options = options;
    this.#timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.#maxInFlight = options.maxInFlight;
    const rate = options.rateLimit;
    this.#intake = new IntakeLimit(
      options.rateBucket ?? (rate ? new TokenBucket(rate.count, rate.perMs) : null),
      () => this.#balance(),
    );
    const { topic, nsqdAddresses, lookupdUrls, log } = options;
    this.#discovery = new Discovery<Slot>({
      topic,
      nsqdAddresses,
      lookupdUrls,
      log,
      timings: this.#timings,
      track: (nsqd) => ({
        ...nsqd,
        link: null,
        grantedAt: -Infinity,
        releasedAt: 0,
        activeAt: -Infinity,
        loweredAt: -Infinity,
        loweredFrom: 0,
        received: 0,
        receivedSeen: 0,
      }),
      open: (slot) => this.#open(slot),
    });
  }

  /** Connects to the direct nsqd and starts asking nsqlookupd. */
  start(): void {
    this.#discovery.start();
  }

  /**
   * Messages received and not yet answered, on every connection (those gone
   * included): what nsqd counts as in flight, less what is still on the wire.
   */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Why this consumer is not ready yet, or null when it is ({@linkcode Discovery.notReadyReason}). */
  notReadyReason(): string | null {
    return this.#discovery.notReadyReason();
  }

  /** Connections, RDY and pause state. */
  status(): ConsumerStatus {
    const connected: string[] = [];
    const disconnected: string[] = [];
    const nsqds: NsqdStatus[] = [];
    let rdy = 0;
    for (const slot of this.#discovery.nsqds()) {
      const connection = slot.link?.connection;
      const ready = connection?.isReady ?? false;
      if (ready) {
        connected.push(slot.address);
        rdy += connection!.rdy;
      } else {
        disconnected.push(slot.address);
      }
      nsqds.push({
        address: slot.address,
        connected: ready,
        rdy: ready ? connection!.rdy : 0,
        inFlight: slot.link?.inFlight ?? 0,
      });
    }
    return { connected, disconnected, paused: this.#paused, rdy, nsqds };
  }

  /** RDY 0 everywhere; messages already delivered carry on. */
  pause(): void {
    this.#paused = true;
    this.#balance();
  }

  /** Gives RDY back. */
  resume(): void {
    this.#paused = false;
    this.#balance();
  }

  /**
   * Takes at most `count` messages beyond those in flight now; 0 gives RDY 0
   * everywhere, as pausing does, and null lifts the limit. Apart from pause:
   * an entry's circuit breaker holds its consumer with this.
   */
  admit(count: number | null): void {
    this.#intake.admit(count);
    this.#balance();
  }

  /**
   * Stops discovery and reconnection and tells every nsqd to stop sending
   * (RDY 0, CLS). Resolves once each has confirmed. What nsqd sent until
   * then is still delivered, within `max_in_flight` (the backlog included):
   * nsqd counted an attempt for each message as it sent it, and one handed
   * back unhandled would come back with that attempt spent. Every message
   * delivered must be answered before `close()`; `inFlight` says when.
   */
  async drain(timeoutMs = 2000): Promise<void> {
    this.#stop();
    const draining: Promise<void>[] = [];
    for (const slot of this.#discovery.nsqds()) {
      if (slot.link) draining.push(slot.link.connection.drain(timeoutMs, "deliver"));
    }
    await Promise.all(draining);
  }

  /**
   * Requeues the messages still in the backlog (never handed to a handler)
   * and closes every connection after its pending responses are written.
   */
  async close(timeoutMs = 2000): Promise<void> {
    this.#stop();
    for (const message of this.#backlog.splice(0)) message.requeue(0);
    const closing: Promise<void>[] = [];
    for (const slot of this.#discovery.nsqds()) {
      if (slot.link) closing.push(slot.link.connection.close(timeoutMs));
    }
    await Promise.all(closing);
  }

  /** Stops discovery, reconnection and the planning timers. */
  #stop(): void {
    this.#stopping = true;
    this.#discovery.stop();
    if (this.#rotateTimer !== null) clearTimeout(this.#rotateTimer);
    this.#intake.stop();
    this.#rotateTimer = null;
  }

  /** A connection to `slot`'s nsqd whose events keep the counts. */
  #open(slot: Slot): Link {
    const { topic, channel, connection: options, log } = this.#options;
    const connection: ReaderConnection = new ReaderConnection(
      slot.host,
      slot.port,
      topic,
      channel,
      options,
      {
        ready: () => {
          this.#discovery.connected(slot);
          slot.releasedAt = performance.now();
          this.#balance();
        },
        message: (message) => {
          link.inFlight++;
          this.#inFlight++;
          slot.received++;
          this.#deliver(message);
        },
        responded: () => {
          link.inFlight--;
          this.#inFlight--;
          this.#answered(link);
        },
        // Its messages still being handled stay counted in #inFlight until answered.
        closed: (error) => {
          if (this.#discovery.closed(slot, link, error)) this.#balance();
        },
        error: (error) => {
          log.warning("nsqd error", { nsqd: connection.address, error: error.message });
        },
      },
    );
    // The events above count on `link` directly, with no lookup per message;
    // none of them comes before connect().
    const link: Link = { connection, inFlight: 0 };
    return link;
  }

  /**
   * Recomputes every connection's RDY with the planner (see rdy_planner.ts):
   * the messages in flight never exceed `max_in_flight`, even while RDY moves
   * between connections, and scarce RDY visits every nsqd.
   */
  #balance(answering: Link | null = null): void {
    const now = performance.now();
    const ready: Slot[] = [];
    let inFlightHere = 0;
    for (const slot of this.#discovery.nsqds()) {
      if (slot.link?.connection.isReady) {
        ready.push(slot);
        inFlightHere += slot.link.inFlight;
      }
    }
    const inFlight = this.#inFlight;
    // Closed connections' messages, and those of connections not ready.
    const inFlightElsewhere = inFlight - inFlightHere;
    const total = this.#intake.cap(
      this.#paused || this.#stopping ? 0 : this.#maxInFlight,
      inFlight,
      this.#maxInFlight,
    );
    const connections = ready.map((slot) => {
      const { connection, inFlight } = slot.link!;
      if (slot.received !== slot.receivedSeen) {
        slot.receivedSeen = slot.received;
        slot.activeAt = now;
      }
      return {
        maxRdyCount: connection.maxRdyCount,
        rdy: connection.rdy,
        inFlight,
        grantedAt: slot.grantedAt,
        releasedAt: slot.releasedAt,
        activeAt: slot.activeAt,
        loweredAt: slot.loweredAt,
        loweredFrom: slot.loweredFrom,
        answering: slot.link === answering,
      };
    });
    const plan = planRdy({
      total,
      connections,
      inFlightElsewhere,
      now,
      sliceMs: scarceSliceMs(total, ready.length),
      idleMs: this.#timings.rdyIdleMs,
      lowerGraceMs: this.#timings.rdyLowerGraceMs,
    });
    // Lowered first, so that nsqd reads the cuts before the raises they pay for.
    for (const lowering of [true, false]) {
      for (const [i, slot] of ready.entries()) {
        const { connection, inFlight } = slot.link!;
        const rdy = plan.rdy[i]!;
        if (rdy === connection.rdy || (rdy < connection.rdy) !== lowering) continue;
        if (connection.rdy === 0) slot.grantedAt = now;
        else if (rdy === 0) slot.releasedAt = now;
        // nsqd counts an answer in flight until it reads it, after this RDY.
        if (lowering && connection.rdy > inFlight + (slot.link === answering ? 1 : 0)) {
          slot.loweredAt = now;
          slot.loweredFrom = connection.rdy;
        }
        connection.setRdy(rdy);
      }
    }
    this.#short = plan.short;
    this.#scheduleRotation(plan.nextAt === null ? Infinity : plan.nextAt, now);
  }

  /** Messages handed to `onMessage` and not yet answered. */
  get #running(): number {
    return this.#inFlight - this.#backlog.length;
  }

  /** `message` is already counted in #inFlight. */
  #deliver(message: NsqMessage): void {
    this.#intake.take();
    if (this.#running > this.#maxInFlight) {
      this.#backlog.push(message);
      return;
    }
    this.#options.onMessage(message);
  }

  /**
   * A message of `link` was answered (and uncounted): a handler is free, or
   * the backlog shrank. Its FIN or REQ is written right after this returns.
   */
  #answered(link: Link): void {
    if (this.#backlog.length > 0 && !this.#draining) {
      // Never from inside an answer: the next handler starts after this
      // message's outcome has been carried out and logged.
      this.#draining = true;
      queueMicrotask(() => this.#drainBacklog());
    }
    // Only plans RDY; never delivers.
    if (this.#short || this.#intake.limiting) this.#balance(link);
  }

  #drainBacklog(): void {
    this.#draining = false;
    while (this.#backlog.length > 0 && this.#running < this.#maxInFlight) {
      this.#options.onMessage(this.#backlog.shift()!);
    }
  }

  /** Plans again at `at` (performance.now() time), unless a plan is already due sooner. */
  #scheduleRotation(at: number, now: number): void {
    if (at >= this.#rotateAt) return;
    if (this.#rotateTimer !== null) clearTimeout(this.#rotateTimer);
    this.#rotateTimer = null;
    this.#rotateAt = at;
    if (this.#stopping) return;
    this.#rotateTimer = setTimeout(() => {
      this.#rotateTimer = null;
      this.#rotateAt = Infinity;
      this.#balance();
    }, Math.max(1, Math.ceil(at - now)));
  }
}
