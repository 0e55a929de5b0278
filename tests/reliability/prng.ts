/**
 * A small seeded pseudo-random generator for the reliability suite: kill
 * moments, fuzz mutations and random bodies are drawn from it, so a failure
 * can be replayed with the seed it reports.
 *
 * @module
 */

/**
 * The seed of a run: `RELIABILITY_SEED` when set (to replay a failure),
 * otherwise `fallback`, so that `deno task test` is deterministic.
 *
 * @example
 * ```ts
 * const seed = seedFromEnv(42);
 * ```
 */
export function seedFromEnv(fallback: number): number {
  const text = Deno.env.get("RELIABILITY_SEED");
  if (text === undefined || text === "") return fallback;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(
      `Cannot seed the reliability suite as 'RELIABILITY_SEED' must be an integer: current value is ${text}`,
    );
  }
  return seed;
}

/**
 * mulberry32: 32 bits of state, fast, and good enough to pick test inputs.
 *
 * @example
 * ```ts
 * const random = new Prng(42);
 * random.int(0, 10); // the same number for every run with seed 42
 * ```
 */
export class Prng {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer from `min` to `max`, both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One item of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty list");
    return items[this.int(0, items.length - 1)]!;
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
}
