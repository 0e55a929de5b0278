/**
 * One timer for many calls that share a timeout.
 *
 * @module
 */

interface Entry {
  readonly at: number;
  readonly reject: (error: Error) => void;
}

/**
 * Rejects calls that outlive a fixed timeout, with one timer for all of them
 * instead of one each: calls share the timeout, so their deadlines come in
 * the order they were added and only the oldest needs watching. A call that
 * settles early stays queued until its deadline; rejecting a settled
 * promise does nothing.
 *
 * @example
 * ```ts
 * import { Deadlines } from "./deadlines.ts";
 *
 * const deadlines = new Deadlines(1_000, () => new Error("no answer within 1000ms"));
 * const { promise, resolve, reject } = Promise.withResolvers<string>();
 * deadlines.add(reject);
 * resolve("in time");
 * await promise;
 * deadlines.clear(new Error("closed"));
 * ```
 */
export class Deadlines {
  readonly #timeoutMs: number;
  readonly #error: () => Error;
  #entries: Entry[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `error` makes the rejection of a call that timed out. */
  constructor(timeoutMs: number, error: () => Error) {
    this.#timeoutMs = timeoutMs;
    this.#error = error;
  }

  /** Watches a call: `reject` is called unless the call is cleared first, `timeoutMs` from now. */
  add(reject: (error: Error) => void): void {
    this.#entries.push({ at: performance.now() + this.#timeoutMs, reject });
    this.#timer ??= setTimeout(this.#expire, this.#timeoutMs);
  }

  /** Rejects every call still watched with `error` (settled ones ignore it) and stops the timer. */
  clear(error: Error): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const entries = this.#entries;
    const head = this.#head;
    this.#entries = [];
    this.#head = 0;
    for (let i = head; i < entries.length; i++) entries[i]!.reject(error);
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const entries = this.#entries;
    let head = this.#head;
    let error: Error | undefined;
    while (head < entries.length && entries[head]!.at <= now) {
      entries[head++]!.reject(error ??= this.#error());
    }
    if (head === entries.length) {
      this.#entries = [];
      this.#head = 0;
      return;
    }
    // Drop the expired front now and then, not at every tick.
    if (head > 1024 && head * 2 > entries.length) {
      this.#entries = entries.slice(head);
      head = 0;
    }
    this.#head = head;
    this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(this.#entries[head]!.at - now)));
  };
}
