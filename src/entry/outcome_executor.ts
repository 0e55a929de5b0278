/**
 * Carries out what the task runner decided for a message: FIN, REQ or a
 * dead letter on its connection, counted in the entry's stats and logged.
 *
 * @module
 */

import type { Entry } from "../config/types.ts";
import { deadLetterEnvelope } from "./dead_letter.ts";
import type { EntryPublisher } from "../context/entry_context.ts";
import type { EntryStats } from "../observe/entry_stats.ts";
import type { DeadLetterRing } from "../observe/dead_letter_ring.ts";
import { isLogged } from "../observe/log.ts";
import type { NsqMessage } from "../nsq/nsq_message.ts";
import { describeError } from "../error_text.ts";
import type { Outcome, StoreFailure } from "../runner/outcome.ts";
import { requeueDelay } from "../runner/requeue_delay.ts";
import type { EntryTracer } from "./tracing/entry_tracer.ts";
import type { Logger } from "../worker/worker.ts";

/** What an {@linkcode OutcomeExecutor} needs of its entry. */
export interface OutcomeExecutorOptions {
  readonly entry: Entry;
  readonly stats: EntryStats;
  readonly log: Logger;
  /** Where dead letters go. */
  readonly publisher: EntryPublisher;
  /** Traces dead letters; null when tracing is off. */
  readonly tracer?: EntryTracer | null;
  /** Keeps the last dead letters written, for the page. */
  readonly deadLetters?: DeadLetterRing;
}

/** One entry's executor of outcomes. */
export class OutcomeExecutor {
  readonly #entry: Entry;
  readonly #stats: EntryStats;
  readonly #log: Logger;
  readonly #publisher: EntryPublisher;
  readonly #tracer: EntryTracer | null;
  readonly #deadLetters: DeadLetterRing | null;

  constructor(options: OutcomeExecutorOptions) {
    this.#tracer = options.tracer ?? null;
    this.#deadLetters = options.deadLetters ?? null;
    this.#entry = options.entry;
    this.#stats = options.stats;
    this.#log = options.log;
    this.#publisher = options.publisher;
  }

  /**
   * Answers `message` as `outcome` says, counts and logs it; only a dead
   * letter, which is published first, gives a promise. It never rejects.
   */
  carryOut(message: NsqMessage, outcome: Outcome): void | Promise<void> {
    this.#stats.record(outcome);
    const storeFailure = storeFailureOf(outcome);
    if (storeFailure?.bypassed) {
      this.#log.warning(
        "dedupe store failed; handled without dedupe",
        fields(message, outcome),
      );
    }
    switch (outcome.kind) {
      case "finish":
        message.finish();
        if (isLogged("debug")) this.#log.debug("finished", fields(message, outcome));
        return;
      case "duplicate":
        message.finish();
        this.#log.info("duplicate: already handled", fields(message, outcome));
        return;
      case "busy":
        message.requeue(outcome.delayMs);
        this.#log.info(
          "busy: its key is being handled elsewhere; requeued",
          fields(message, outcome),
        );
        return;
      case "retry":
        message.requeue(outcome.delayMs);
        this.#log.warning(
          storeFailure && !storeFailure.bypassed
            ? "dedupe store failed; requeued until it answers"
            : "handler failed; requeued for a retry",
          fields(message, outcome),
        );
        return;
      case "interrupted":
        message.requeue(requeueDelay("interrupted", message.attempts, this.#entry));
        this.#log.info("interrupted by shutdown; requeued", fields(message, outcome));
        return;
      case "dead":
        return this.#deadLetter(message, outcome);
    }
  }

  async #deadLetter(message: NsqMessage, outcome: Outcome & { kind: "dead" }): Promise<void> {
    const entry = this.#entry;
    const logFields = fields(message, outcome);
    if (entry.deadLetterTopic === null) {
      message.finish();
      this.#log.error("dead; dead letters are off", logFields);
      return;
    }
    const send = this.#tracer?.deadLetter(entry.deadLetterTopic, message) ?? null;
    const traceparent = send?.traceparent ?? null;
    const envelope = deadLetterEnvelope({
      topic: entry.nsqTopic,
      channel: entry.channel,
      worker: entry.worker,
      message,
      reason: outcome.reason,
      error: outcome.error,
      ...(traceparent === null ? {} : { traceparent }),
    });
    try {
      await this.#publisher.publishRaw(entry.deadLetterTopic, envelope);
      send?.end();
    } catch (error) {
      send?.end(error);
      this.#stats.deadLetterFailures++;
      // When it comes back its handler is not run again (attempts are
      // beyond max_attempts), only this publish is retried.
      const delayMs = requeueDelay("dead_letter", message.attempts, entry);
      message.requeue(delayMs);
      this.#log.error("dead, but publishing the dead letter failed; requeued", {
        ...logFields,
        delay_ms: delayMs,
        publish_error: describeError(error),
      });
      return;
    }
    message.finish();
    this.#deadLetters?.record(message, outcome.reason, outcome.error);
    this.#log.error("dead; sent to the dead letter topic", {
      ...logFields,
      dead_letter_topic: entry.deadLetterTopic,
    });
  }
}

function fields(message: NsqMessage, outcome: Outcome): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    msg_id: message.id,
    attempts: message.attempts,
    outcome: outcome.kind,
  };
  if ("durationMs" in outcome && outcome.durationMs !== null) {
    // Hundredths of a millisecond are plenty in a log line; metrics keep it all.
    fields.duration_ms = Math.round(outcome.durationMs * 100) / 100;
  }
  if ("delayMs" in outcome) fields.delay_ms = outcome.delayMs;
  if ("error" in outcome) fields.error = outcome.error;
  if ("reason" in outcome) fields.reason = outcome.reason;
  const storeFailure = storeFailureOf(outcome);
  if (storeFailure !== undefined) {
    fields.store_error = storeFailure.error;
    if (storeFailure.bypassed) fields.dedupe = "bypassed";
  }
  return fields;
}

function storeFailureOf(outcome: Outcome): StoreFailure | undefined {
  return (outcome as { readonly storeFailure?: StoreFailure }).storeFailure;
}
