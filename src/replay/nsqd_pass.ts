/**
 * One replay run's reading of one nsqd's channel: every dead letter it holds
 * is handed to the run once.
 *
 * nsqd hands out its memory queue, its disk queue and requeued messages in no
 * fixed order, so a dead letter requeued during the run can come back before
 * others were seen at all. So nothing is requeued during the run: what is not
 * FIN'd is held in flight (TOUCHed before nsqd's message timeout) and
 * requeued, all at once, when the run ends. Nothing can come round twice, and
 * the pass ends when nsqd's stats say the channel holds nothing that the pass
 * does not hold. One connection holds at most nsqd's max RDY count; more
 * connections are opened as those fill.
 *
 * @module
 */

import type { ConnectionOptions } from "../nsq/connection_options.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import { ReaderConnection } from "../nsq/reader_connection.ts";
import { asError } from "../error_text.ts";
import { channelBacklog, type NsqdAddress } from "./dead_letter_nsqds.ts";

/** What becomes of a handled dead letter: FIN, or held until the pass ends, then requeued. */
export type Answer = "finish" | "hold";

/**
 * Messages a connection is sent beyond those it holds: they wait for their
 * handling, so this bounds the bodies in memory (a held one keeps only its id).
 */
const WINDOW = 100;
/** Connections one pass opens at most: a pass holds at most this many times nsqd's max RDY. */
const MAX_CONNECTIONS = 100;
/** Quiet periods during which nsqd still reports dead letters the pass was not given. */
const MAX_QUIET_ROUNDS = 4;

/** How a pass ended. */
export interface PassEnd {
  /** Why some dead letters were not seen; null when each was seen, or the pass was stopped. */
  readonly unseen: string | null;
}

/** One connection of a pass, and how many dead letters it holds. */
interface Link {
  readonly conn: ReaderConnection;
  /** SUB succeeded: nsqd's max RDY is known. */
  ready: boolean;
  held: number;
}

/** A dead letter the pass was given. */
interface Entry {
  readonly id: string;
  /** The connection its latest delivery came on. */
  link: Link;
  /** That delivery, until the entry is held or finished: a held one keeps no body. */
  message: NsqMessage | null;
  state: "pending" | "handling" | "held" | "finished";
}

/** The reading of one nsqd's channel. */
export class NsqdPass {
  readonly #nsqd: NsqdAddress;
  readonly #topic: string;
  readonly #channel: string;
  readonly #options: ConnectionOptions;
  readonly #handle: (message: NsqMessage) => Promise<Answer>;
  readonly #idleMs: number;
  readonly #links: Link[] = [];
  /** Every dead letter seen, by id (unique per nsqd and topic). */
  readonly #entries = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  /** Dead letters given to the pass and not answered: what nsqd counts in flight for it. */
  #unanswered = 0;
  #current: Promise<void> | null = null;
  /** How many dead letters to see before nsqd's stats are asked whether the channel is done. */
  #expected: number | null = null;
  #quietRounds = 0;
  /** nsqd's stats being asked; the pass closes only once they answered. */
  #checking: ReturnType<typeof channelBacklog> | null = null;
  #idle: ReturnType<typeof setTimeout> | undefined;
  #touch: ReturnType<typeof setInterval> | undefined;
  #ending: Promise<void> | null = null;
  #unseen: string | null = null;
  #lost: Error | null = null;
  #done = Promise.withResolvers<PassEnd>();

  constructor(
    nsqd: NsqdAddress,
    topic: string,
    channel: string,
    options: ConnectionOptions,
    handle: (message: NsqMessage) => Promise<Answer>,
    idleMs: number,
  ) {
    this.#nsqd = nsqd;
    this.#topic = topic;
    this.#channel = channel;
    this.#options = options;
    this.#handle = handle;
    this.#idleMs = idleMs;
  }

  /** Reads until every dead letter was seen; rejects when a connection is lost. */
  async run(): Promise<PassEnd> {
    const start = await this.#backlog();
    // Deferred and in-flight ones count: they may come back during the run.
    this.#expected = start === null
      ? null
      : start.depth + start.inFlight + start.deferred + start.topicDepth;
    this.#open();
    return this.#done.promise;
  }

  /**
   * Stops reading: the dead letter being handled gets its answer, every
   * other one is requeued, then the connections close. Safe to call twice.
   */
  end(): Promise<void> {
    this.#ending ??= this.#close();
    return this.#ending;
  }

  #backlog() {
    return channelBacklog(this.#nsqd, this.#topic, this.#channel);
  }

  #open(): void {
    if (this.#links.length >= MAX_CONNECTIONS) {
      const held = this.#links.reduce((sum, link) => sum + link.held, 0);
      this.#stop(
        `holds ${held} dead letters on ${MAX_CONNECTIONS} connections, the most one run ` +
          `holds; the rest were not seen`,
      );
      return;
    }
    // deno-lint-ignore prefer-const -- the events below need it before it is made
    let link: Link;
    const conn = new ReaderConnection(
      this.#nsqd.host,
      this.#nsqd.port,
      this.#topic,
      this.#channel,
      this.#options,
      {
        ready: () => {
          // Opened just before the pass ended: given no RDY, nsqd sends it nothing.
          if (this.#ending !== null) return;
          link.ready = true;
          this.#setRdy(link);
          this.#touchEvery(link.conn.msgTimeoutMs);
          this.#whenIdle();
        },
        message: (message) => this.#receive(link, message),
        responded: () => {},
        closed: (error) => {
          if (this.#ending !== null) return;
          this.#lost = new Error(`connection closed${error ? `: ${error.message}` : ""}`);
          void this.end();
        },
        error: () => {/* a fatal one is followed by closed, which reports it */},
      },
    );
    link = { conn, ready: false, held: 0 };
    this.#links.push(link);
    conn.connect();
  }

  /** nsqd sends up to WINDOW dead letters beyond those the connection holds. */
  #setRdy(link: Link): void {
    link.conn.setRdy(Math.min(link.conn.maxRdyCount, link.held + WINDOW));
  }

  /** Opens another connection once every one holds as many as nsqd lets it, if more are due. */
  #growIfFull(): void {
    if (this.#ending !== null || this.#allExpectedSeen()) return;
    if (this.#links.some((link) => !link.ready || link.held < link.conn.maxRdyCount)) return;
    this.#open();
  }

  #allExpectedSeen(): boolean {
    return this.#expected !== null && this.#entries.size >= this.#expected;
  }

  /** TOUCHes what the pass holds well before nsqd's message timeout would requeue it. */
  #touchEvery(msgTimeoutMs: number): void {
    if (this.#touch !== undefined) return;
    this.#touch = setInterval(() => {
      for (const entry of this.#entries.values()) {
        if (entry.message !== null) entry.message.touch();
        else if (entry.state === "held" && entry.link.conn.canRespond) {
          entry.link.conn.send(`TOUCH ${entry.id}\n`);
        }
      }
    }, Math.max(100, msgTimeoutMs / 3));
  }

  #receive(link: Link, message: NsqMessage): void {
    if (this.#ending !== null) {
      message.requeue(0);
      return;
    }
    clearTimeout(this.#idle);
    this.#quietRounds = 0;
    const known = this.#entries.get(message.id);
    if (known === undefined) {
      const entry: Entry = { id: message.id, link, message, state: "pending" };
      this.#entries.set(message.id, entry);
      this.#unanswered++;
      this.#queue.push(entry);
      this.#pump();
      return;
    }
    // nsqd gave it again: the delivery the pass had timed out, so this one
    // is answered in its place.
    if (known.state === "finished") {
      // Its body was published; the FIN came too late for the old delivery.
      message.finish();
      return;
    }
    const before = known.link;
    known.link = link;
    if (known.state === "held") {
      before.held--;
      link.held++;
      this.#setRdy(before);
      this.#setRdy(link);
    } else {
      known.message = message;
    }
  }

  /** Handles the queued dead letters one at a time. */
  #pump(): void {
    if (this.#current !== null || this.#ending !== null) return;
    const entry = this.#queue.shift();
    if (entry === undefined) {
      this.#whenIdle();
      return;
    }
    entry.state = "handling";
    this.#current = this.#handle(entry.message!).then((answer) => {
      this.#current = null;
      this.#answer(entry, answer);
      this.#pump();
    }, (error) => {
      this.#current = null;
      this.#lost ??= asError(error);
      entry.state = "pending";
      void this.end();
    });
  }

  #answer(entry: Entry, answer: Answer): void {
    const message = entry.message!;
    entry.message = null;
    if (answer === "finish") {
      message.finish();
      entry.state = "finished";
      this.#unanswered--;
      return;
    }
    entry.state = "held";
    entry.link.held++;
    this.#setRdy(entry.link);
    this.#growIfFull();
  }

  /** Nothing to handle: ask nsqd now if every dead letter expected was seen, else after a while. */
  #whenIdle(): void {
    if (this.#ending !== null || this.#current !== null || this.#queue.length > 0) return;
    if (!this.#links.some((link) => link.ready)) return;
    if (this.#allExpectedSeen()) void this.#check();
    else this.#checkLater();
  }

  /** Ends the pass when nsqd's stats say the channel holds nothing the pass was not given. */
  async #check(): Promise<void> {
    if (this.#checking !== null || this.#ending !== null) return;
    clearTimeout(this.#idle);
    const seen = this.#entries.size;
    this.#checking = this.#backlog();
    const backlog = await this.#checking;
    this.#checking = null;
    // A dead letter came meanwhile: its handling asks again.
    if (this.#ending !== null || this.#entries.size !== seen || this.#current !== null) return;
    const quiet = ++this.#quietRounds >= MAX_QUIET_ROUNDS;
    if (backlog === null) {
      if (quiet) {
        this.#stop(
          "nsqd's HTTP stats are unknown or did not answer: cannot tell whether every dead letter was seen",
        );
      } else this.#checkLater();
      return;
    }
    // A FIN not yet read by nsqd still counts in flight; so do deliveries on their way.
    const missing = backlog.depth + backlog.topicDepth + backlog.deferred +
      Math.max(0, backlog.inFlight - this.#unanswered);
    if (missing === 0) {
      void this.end();
    } else if (quiet) {
      this.#stop(
        `${missing} dead letters were not seen: held by another consumer, deferred, or in a ` +
          `paused topic or channel (a run that ended without answering leaves its dead letters ` +
          `in flight until nsqd's message timeout)`,
      );
    } else {
      this.#expected = seen + missing;
      this.#growIfFull();
      this.#checkLater();
    }
  }

  #checkLater(): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => void this.#check(), this.#idleMs);
  }

  #stop(unseen: string): void {
    this.#unseen ??= unseen;
    void this.end();
  }

  async #close(): Promise<void> {
    clearTimeout(this.#idle);
    clearInterval(this.#touch);
    // RDY 0 and CLS first: what is requeued below is not sent to this pass again.
    await Promise.all(this.#links.map((link) => link.conn.drain()));
    await this.#current;
    await this.#checking;
    for (const entry of this.#entries.values()) {
      if (entry.message !== null) entry.message.requeue(0);
      else if (entry.state === "held" && entry.link.conn.canRespond) {
        entry.link.conn.send(`REQ ${entry.id} 0\n`);
      }
    }
    await Promise.all(this.#links.map((link) => link.conn.close()));
    if (this.#lost !== null) this.#done.reject(this.#lost);
    else this.#done.resolve({ unseen: this.#unseen });
  }
}
