/**
 * A rendered body reused while it is younger than `maxAgeMs`, so that a
 * client polling `/metrics` or `/stats` as fast as it can costs the daemon at
 * most one rendering per `maxAgeMs`, whatever its rate: the daemon shares its
 * one thread between the HTTP surface and the messages.
 *
 * @module
 */

/** Options of {@linkcode FreshFor}. */
export interface FreshForOptions {
  /** How long a rendering is served again; 0 renders every time. */
  readonly maxAgeMs: number;
  /** The clock, in ms (default `performance.now()`). */
  readonly now?: () => number;
}

/** One cached rendering. */
export class FreshFor {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #body: string | null = null;
  #at = 0;

  constructor(options: FreshForOptions) {
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The last rendering if it is fresh enough, else a new one from `render`. */
  get(render: () => string): string {
    const now = this.#now();
    if (this.#body === null || now - this.#at >= this.#maxAgeMs) {
      this.#body = render();
      this.#at = now;
    }
    return this.#body;
  }

  /** Forgets the rendering: the next `get` renders (after a change the caller made itself). */
  clear(): void {
    this.#body = null;
  }
}
