/**
 * The deliveries of each message that its entry's circuit breaker excused
 * from `max_attempts`: those requeued because the breaker was open.
 *
 * @module
 */

/**
 * The most messages remembered: an outage leaves few (the breaker takes
 * none while open), but messages that go on to another process are never
 * forgotten here, so the oldest are let go.
 */
const MAX_MESSAGES = 100_000;

/** What identifies a message: its id where it is unique. */
export interface MessageIdentity {
  readonly id: string;
  /** Where `id` is unique (nsqd mints ids per node-id). */
  readonly idScope: string;
}

/**
 * Counts per message, kept in this process only: a restart forgets them, as
 * does another process the message goes to, and there its excused
 * deliveries count again.
 *
 * @example
 * ```ts
 * import { ExcusedAttempts } from "./excused_attempts.ts";
 *
 * const excused = new ExcusedAttempts();
 * const message = { id: "0a1b2c3d4e5f6789", idScope: "orders/ship@127.0.0.1:4150" };
 * excused.add(message);
 * excused.of(message); // 1
 * excused.forget(message);
 * ```
 */
export class ExcusedAttempts {
  readonly #counts = new Map<string, number>();
  readonly #max: number;

  constructor(max = MAX_MESSAGES) {
    this.#max = max;
  }

  /** Messages with a count. */
  get size(): number {
    return this.#counts.size;
  }

  /** The deliveries of `message` excused so far. */
  of(message: MessageIdentity): number {
    return this.#counts.size === 0 ? 0 : this.#counts.get(key(message)) ?? 0;
  }

  /** Excuses one more delivery of `message`. */
  add(message: MessageIdentity): void {
    const k = key(message);
    const count = this.#counts.get(k) ?? 0;
    // Deleted and set again: the map's order is then the order of last use.
    this.#counts.delete(k);
    this.#counts.set(k, count + 1);
    if (this.#counts.size > this.#max) this.#counts.delete(this.#counts.keys().next().value!);
  }

  /** `message` is done with (finished or dead). */
  forget(message: MessageIdentity): void {
    if (this.#counts.size > 0) this.#counts.delete(key(message));
  }
}

function key(message: MessageIdentity): string {
  return `${message.idScope} ${message.id}`;
}
