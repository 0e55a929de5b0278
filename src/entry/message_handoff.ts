/**
 * How a running entry answers one delivery: past its breaker, through its
 * task runner (inside the delivery's span), to its outcome executor, with the
 * stall watchdog's board told what is in flight.
 *
 * @module
 */

import type { NsqMessage } from "../nsq/nsq_message.ts";
import type { BoardEntry } from "../observe/stall_board.ts";
import { describeError } from "../error_text.ts";
import type { Outcome } from "../runner/outcome.ts";
import { requeueDelay, type RequeueSettings } from "../runner/requeue_delay.ts";
import type { TaskRunner } from "../runner/task_runner.ts";
import type { Logger } from "../worker/worker.ts";
import type { BreakerGuard } from "./breaker_guard.ts";
import type { OutcomeExecutor } from "./outcome_executor.ts";
import type { DeliverySpan } from "./tracing/delivery_span.ts";
import type { EntryTracer } from "./tracing/entry_tracer.ts";

/** What {@linkcode MessageHandoff} takes each delivery through. */
export interface MessageHandoffOptions {
  /** The entry's retry delays, for a message whose answer went wrong. */
  readonly requeue: RequeueSettings;
  readonly runner: TaskRunner;
  readonly executor: OutcomeExecutor;
  /** Null when tracing is off: then no span is made. */
  readonly tracer: EntryTracer | null;
  /** Null unless the entry has a `breaker`. */
  readonly breaker: BreakerGuard | null;
  /** The entry on the stall watchdog's board. */
  readonly board: BoardEntry;
  /** Aborted by a forced shutdown: the handlers still running are interrupted. */
  readonly stop: AbortSignal;
  readonly log: Logger;
  /** Told each time a delivery has been answered (FIN or REQ written, or refused). */
  readonly onAnswered: () => void;
}

/**
 * Takes each delivery of an entry to its answer: every message it receives
 * gets exactly one, even when the runner or the executor fails.
 *
 * @example
 * ```ts
 * import { MessageHandoff, type MessageHandoffOptions } from "./message_handoff.ts";
 * import type { NsqMessage } from "../nsq/nsq_message.ts";
 *
 * declare const options: MessageHandoffOptions;
 * declare const message: NsqMessage;
 * new MessageHandoff(options).receive(message);
 * ```
 */
export class MessageHandoff {
  readonly #requeue: RequeueSettings;
  readonly #runner: TaskRunner;
  readonly #executor: OutcomeExecutor;
  readonly #tracer: EntryTracer | null;
  readonly #breaker: BreakerGuard | null;
  readonly #board: BoardEntry;
  readonly #stop: AbortSignal;
  readonly #log: Logger;
  readonly #answered: () => void;

  constructor(options: MessageHandoffOptions) {
    this.#requeue = options.requeue;
    this.#runner = options.runner;
    this.#executor = options.executor;
    this.#tracer = options.tracer;
    this.#breaker = options.breaker;
    this.#board = options.board;
    this.#stop = options.stop;
    this.#log = options.log;
    this.#answered = options.onAnswered;
  }

  /** Runs `message` and carries out its outcome; never throws. */
  receive(message: NsqMessage): void {
    if (this.#breaker?.refuse(message)) return this.#answered();
    this.#board.started(message);
    const span = this.#tracer === null ? null : this.#tracer.start(message);
    const task = this.#breaker === null ? message : this.#breaker.task(message);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = span === null
        ? this.#runner.run(task, this.#stop)
        : span.run(() => this.#runner.run(task, this.#stop));
    } catch (error) {
      outcome = this.#unexpected(message, error);
    }
    if (outcome instanceof Promise) {
      // Listed at each heartbeat until its outcome comes: a handler that
      // resumes into an endless loop is among these.
      const inFlight = this.#board.inFlight;
      inFlight.add(message);
      outcome.then(
        (outcome) => {
          inFlight.delete(message);
          this.#answer(message, outcome, span);
        },
        (error) => {
          inFlight.delete(message);
          this.#answer(message, this.#unexpected(message, error), span);
        },
      );
    } else {
      this.#answer(message, outcome, span);
    }
  }

  /** run() never throws or rejects; were it to, the message must still get an answer. */
  #unexpected(message: NsqMessage, error: unknown): Outcome {
    return {
      kind: "retry",
      delayMs: requeueDelay("fault", message.attempts, this.#requeue),
      error: describeError(error),
      durationMs: null,
    };
  }

  /** With a span, the outcome is carried out inside it (a dead letter's span is its child), then it ends. */
  #answer(message: NsqMessage, outcome: Outcome, span: DeliverySpan | null): void {
    if (this.#breaker !== null) outcome = this.#breaker.settle(message, outcome);
    let pending: void | Promise<void>;
    try {
      pending = span === null
        ? this.#executor.carryOut(message, outcome)
        : span.run(() => this.#executor.carryOut(message, outcome));
    } catch (error) {
      span?.end(outcome);
      this.#failedToAnswer(message, error);
      return;
    }
    if (pending instanceof Promise) {
      pending.then(() => {
        span?.end(outcome);
        this.#answered();
      }, (error) => {
        span?.end(outcome);
        this.#failedToAnswer(message, error);
      });
    } else {
      span?.end(outcome);
      this.#answered();
    }
  }

  /** Whatever went wrong, the message is answered (a no-op when it was) and the entry goes on. */
  #failedToAnswer(message: NsqMessage, error: unknown): void {
    message.requeue(requeueDelay("fault", message.attempts, this.#requeue));
    this.#log.error("carrying out an outcome failed; requeued", {
      msg_id: message.id,
      error: describeError(error),
    });
    this.#answered();
  }
}
