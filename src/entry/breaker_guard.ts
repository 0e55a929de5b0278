/**
 * An entry's circuit breaker at work: it holds the consumer (no RDY while
 * open, one message while half open), turns away what nsqd had sent already,
 * and excuses from `max_attempts` the deliveries it caused, so that an outage
 * of what handlers call ends with nothing dead-lettered by it.
 *
 * @module
 */

import type { BreakerConfig } from "../config/types.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import type { Outcome } from "../runner/outcome.ts";
import { requeueDelay, type RequeueSettings } from "../runner/requeue_delay.ts";
import type { TaskMessage } from "../runner/task_runner.ts";
import type { Logger } from "../worker/worker.ts";
import { Breaker, BREAKER_STATES, type BreakerState, type RunResult } from "./breaker.ts";
import { ExcusedAttempts } from "./excused_attempts.ts";

/** An entry's breaker, as `/stats` and `/metrics` show it. */
export interface BreakerSnapshot {
  readonly state: BreakerState;
  /** When it last opened, in ms since the epoch; null while closed. */
  readonly openedAt: number | null;
  /** Closed: the share of failed runs in the window (null without runs); else the share that opened it. */
  readonly failureRate: number | null;
  /** Handler runs in the window now (closed only: an open breaker counts none). */
  readonly runs: number;
  /** How many times it went into each state. */
  readonly transitions: Readonly<Record<BreakerState, number>>;
  /** Deliveries requeued because it was open, excused from `max_attempts`. */
  readonly excused: number;
}

/** Options of {@linkcode BreakerGuard}. */
export interface BreakerGuardOptions {
  readonly settings: BreakerConfig;
  /** The retry delays of the entry, for a last attempt it turns from dead to retried. */
  readonly requeue: RequeueSettings;
  /** The entry's consumer, held through its admission. */
  readonly consumer: { admit(count: number | null): void };
  /** The entry's logger: a line for every change of state. */
  readonly log: Logger;
  /** A monotonic clock in ms (default `performance.now()`). */
  readonly now?: () => number;
}

/**
 * How a message's outcome counts for the breaker: a run of its handler that
 * succeeded or failed (threw or timed out), or null when its handler did not
 * run, or ended in a `PermanentError` (a verdict on the message, not on what
 * the handler calls).
 *
 * @example
 * ```ts
 * import { runResult } from "./breaker_guard.ts";
 *
 * runResult({ kind: "retry", delayMs: 5_000, error: "ECONNREFUSED", durationMs: 3 }); // "failed"
 * runResult({ kind: "dead", reason: "validate", error: "bad", durationMs: null }); // null
 * ```
 */
export function runResult(outcome: Outcome): RunResult | null {
  switch (outcome.kind) {
    case "finish":
      return "ok";
    case "retry":
      return outcome.durationMs === null ? null : "failed";
    case "dead":
      return outcome.durationMs === null || outcome.reason !== "max_attempts" ? null : "failed";
    default:
      return null;
  }
}

/**
 * One entry's breaker between its consumer and its task runner. The entry
 * asks {@linkcode BreakerGuard.refuse} of each delivery before running it,
 * runs {@linkcode BreakerGuard.task} of it, and passes its outcome through
 * {@linkcode BreakerGuard.settle} before carrying it out.
 *
 * A delivery is excused when it was requeued because the breaker was not
 * closed: turned away unrun, or run and failed after it opened (the message
 * let through while half open among them). The runner then sees its
 * attempts less those excused, so it is dead-lettered only after
 * `max_attempts` deliveries that counted. The counts live in this process:
 * a restart, or another process that gets the message, counts every
 * delivery again.
 *
 * @example
 * ```ts
 * import { BreakerGuard } from "./breaker_guard.ts";
 * import { logger } from "../observe/log.ts";
 *
 * const guard = new BreakerGuard({
 *   settings: { failureRate: 0.5, minRuns: 20, windowMs: 30_000, openForMs: 30_000 },
 *   requeue: { requeueDelayMs: 5_000, maxRequeueDelayMs: 900_000 },
 *   consumer: { admit() {} },
 *   log: logger("entry"),
 * });
 * guard.snapshot().state; // "closed"
 * guard.close();
 * ```
 */
export class BreakerGuard {
  readonly #breaker: Breaker;
  readonly #requeue: RequeueSettings;
  readonly #consumer: { admit(count: number | null): void };
  readonly #log: Logger;
  readonly #excused = new ExcusedAttempts();
  /** The message let through while half open, until its outcome. */
  #probe: NsqMessage | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #openedAt: number | null = null;
  #excusedCount = 0;
  readonly #transitions = Object.fromEntries(BREAKER_STATES.map((s) => [s, 0])) as Record<
    BreakerState,
    number
  >;
  #closed = false;

  constructor(options: BreakerGuardOptions) {
    this.#breaker = new Breaker(options.settings, options.now);
    this.#requeue = options.requeue;
    this.#consumer = options.consumer;
    this.#log = options.log;
  }

  /** The breaker's state now. */
  get state(): BreakerState {
    return this.#breaker.state;
  }

  /**
   * Whether `message` is turned away: the breaker is open, or half open with
   * its one message on its way (nsqd may send a few before it reads RDY 0).
   * A message turned away has been requeued, its delivery excused. The first
   * message of a half-open breaker goes through, and the consumer takes no
   * other until its outcome.
   */
  refuse(message: NsqMessage): boolean {
    const breaker = this.#breaker;
    if (breaker.state === "closed") return false;
    if (breaker.takeProbe()) {
      this.#probe = message;
      this.#consumer.admit(0);
      return false;
    }
    this.#excuse(message);
    // At once: with RDY 0 nsqd keeps it until the breaker takes messages again.
    message.requeue(0);
    this.#log.info("breaker open: requeued without running", {
      msg_id: message.id,
      attempts: message.attempts,
    });
    return true;
  }

  /** `message` as the task runner sees it: its attempts less those excused. */
  task(message: NsqMessage): TaskMessage {
    const excused = this.#excused.of(message);
    return excused === 0 ? message : withAttempts(message, message.attempts - excused);
  }

  /**
   * The outcome `message` gets, once its run has been counted: as decided,
   * unless it failed while the breaker was not closed. Then its delivery is
   * excused, and a last attempt is retried rather than dead-lettered.
   */
  settle(message: NsqMessage, outcome: Outcome): Outcome {
    const result = runResult(outcome);
    const before = this.#breaker.state;
    if (message === this.#probe) {
      this.#probe = null;
      this.#changed(before, this.#breaker.probeEnded(result));
      // It said nothing of what the handler calls: another message goes through.
      if (this.#breaker.state === "half_open" && !this.#closed) this.#consumer.admit(1);
    } else if (result !== null) {
      this.#changed(before, this.#breaker.record(result));
    }
    if (result === "failed" && before !== "closed") return this.#excusedFailure(message, outcome);
    const kind = outcome.kind;
    if (kind === "finish" || kind === "duplicate" || kind === "dead") this.#excused.forget(message);
    return outcome;
  }

  /** The breaker's figures now. */
  snapshot(): BreakerSnapshot {
    const breaker = this.#breaker;
    return {
      state: breaker.state,
      openedAt: breaker.state === "closed" ? null : this.#openedAt,
      failureRate: breaker.failureRate(),
      runs: breaker.window().runs,
      transitions: { ...this.#transitions },
      excused: this.#excusedCount,
    };
  }

  /** Lets a message through once `open_for` has passed. */
  #halfOpenLater(): void {
    const waitMs = this.#breaker.msUntilHalfOpen();
    if (waitMs === null || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // A timer may fire a little before the breaker's clock says it is due.
      if (this.#breaker.msUntilHalfOpen() === 0) this.#changed("open", this.#breaker.poll());
      else this.#halfOpenLater();
    }, Math.ceil(waitMs));
  }

  /** Stops its timer; the entry is stopping. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #excuse(message: NsqMessage): void {
    this.#excused.add(message);
    this.#excusedCount++;
  }

  #excusedFailure(message: NsqMessage, outcome: Outcome): Outcome {
    this.#excuse(message);
    if (outcome.kind !== "dead") return outcome;
    const attempts = message.attempts - this.#excused.of(message);
    return {
      kind: "retry",
      delayMs: requeueDelay("retry", Math.max(1, attempts), this.#requeue),
      error: outcome.error,
      durationMs: outcome.durationMs,
      ...(outcome.storeFailure ? { storeFailure: outcome.storeFailure } : {}),
    };
  }

  /** Logs a change of state `from` → `to` (null: none) and holds or frees the consumer. */
  #changed(from: BreakerState, to: BreakerState | null): void {
    if (to === null) return;
    this.#transitions[to]++;
    const breaker = this.#breaker;
    switch (to) {
      case "open":
        this.#openedAt = Date.now();
        this.#log.warning(
          from === "half_open"
            ? "breaker open again: the message let through failed; taking no messages"
            : "breaker open: too many handler runs failed; taking no messages",
          { failure_rate: breaker.failureRate(), open_for_ms: breaker.settings.openForMs },
        );
        if (this.#closed) return;
        this.#consumer.admit(0);
        this.#halfOpenLater();
        return;
      case "half_open":
        this.#log.info("breaker half open: letting one message through");
        if (!this.#closed) this.#consumer.admit(1);
        return;
      case "closed":
        this.#log.info("breaker closed: the message let through succeeded; taking messages again");
        if (!this.#closed) this.#consumer.admit(null);
        return;
    }
  }
}

/** `message` with `attempts` in place of its own, for the task runner. */
function withAttempts(message: NsqMessage, attempts: number): TaskMessage {
  return {
    id: message.id,
    attempts: Math.max(1, attempts),
    get timestamp() {
      return message.timestamp;
    },
    body: message.body,
    msgTimeoutMs: message.msgTimeoutMs,
    touch: () => message.touch(),
    idScope: message.idScope,
  };
}
