/**
 * Claim tokens for the stores that several processes share.
 *
 * @module
 */

/**
 * Makes claim tokens that are unique across processes: a random prefix for
 * this source, then a counter. Cheaper than a UUID per message, and as safe:
 * two processes share a prefix with a chance of 1 in 2^64.
 *
 * @example
 * ```ts
 * import { ClaimTokens } from "./claim_token.ts";
 *
 * const tokens = new ClaimTokens();
 * tokens.next(); // e.g. "c3f9a0b1c2d4e5f60.1"
 * ```
 */
export class ClaimTokens {
  readonly #prefix: string;
  #count = 0;

  constructor() {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    this.#prefix = "c" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") + ".";
  }

  /** A token never returned before by any source. */
  next(): string {
    // Base 36: see MemoryStore.claim on decimal conversions.
    return this.#prefix + (++this.#count).toString(36);
  }
}
