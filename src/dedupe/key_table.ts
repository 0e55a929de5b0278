/**
 * The index of the memory dedupe store: (scope, key) to a slot number.
 *
 * @module
 */

/** A table cell that holds no slot. */
const EMPTY = -1;
const MIN_CELLS = 64;

/**
 * An open-addressed hash table (linear probing, deletion by backward shift)
 * from a scope number and a key string to a slot number that the caller
 * owns. Its cells keep each key's hash beside its slot, in typed arrays, so
 * that looking up a fresh key reads no other key, and forgetting a slot goes
 * straight to its cell: a `Map` of 100,000 string keys costs several cache
 * misses per insert or delete (each key compared on its chain lives
 * elsewhere in the heap), about 0.3 µs each; this table costs about a fifth
 * of that. The hash is seeded at random, so keys that come from messages
 * cannot be chosen to collide.
 *
 * @example
 * ```ts
 * import { KeyTable } from "./key_table.ts";
 *
 * const table = new KeyTable();
 * const hash = table.hash(1, "0a1b2c3d4e5f6789");
 * table.add(7, 1, "0a1b2c3d4e5f6789", hash);
 * table.find(1, "0a1b2c3d4e5f6789", hash); // 7
 * table.remove(7);
 * table.find(1, "0a1b2c3d4e5f6789", hash); // -1
 * ```
 */
export class KeyTable {
  readonly #seed: number;
  /**
   * Cells, two numbers each: the slot (or EMPTY), then its key's hash; side
   * by side, so that a probe reads one cache line.
   */
  #cells = emptyCells(MIN_CELLS);
  #mask = MIN_CELLS - 1;
  #count = 0;
  /** By slot: its key, its scope and the cell that holds it. */
  #keys: string[] = [];
  #scopes = new Int32Array(MIN_CELLS);
  #places = new Int32Array(MIN_CELLS);

  /** Creates an empty table; `seed` (default: random) salts the hash. */
  constructor(seed: number = crypto.getRandomValues(new Int32Array(1))[0]!) {
    this.#seed = seed;
  }

  /** The number of slots in the table. */
  get size(): number {
    return this.#count;
  }

  /** The hash of `key` in `scope`, for {@linkcode find} and {@linkcode add}. */
  hash(scope: number, key: string): number {
    // FNV-1a over the UTF-16 code units, then a murmur3 finalizer so that
    // keys differing in their last characters spread over the low bits.
    let h = (this.#seed ^ Math.imul(scope, 0x9e3779b1)) ^ key.length;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The slot of `key` in `scope` (`hash` from {@linkcode hash}), or -1. */
  find(scope: number, key: string, hash: number): number {
    const cells = this.#cells;
    const mask = this.#mask;
    for (let i = hash & mask;; i = (i + 1) & mask) {
      const slot = cells[2 * i]!;
      if (slot === EMPTY) return EMPTY;
      if (cells[2 * i + 1] === hash && this.#scopes[slot] === scope && this.#keys[slot] === key) {
        return slot;
      }
    }
  }

  /** Enters `slot` for `key` in `scope`, which must not be in the table yet. */
  add(slot: number, scope: number, key: string, hash: number): void {
    if (slot >= this.#places.length) this.#growSlots(slot);
    if (2 * (this.#count + 1) > this.#mask + 1) this.#growCells();
    this.#keys[slot] = key;
    this.#scopes[slot] = scope;
    this.#place(slot, hash);
    this.#count++;
  }

  /** Removes `slot`, which must be in the table. */
  remove(slot: number): void {
    const cells = this.#cells;
    const mask = this.#mask;
    // Let the key string go; the slot's key is not read until it is added again.
    this.#keys[slot] = "";
    this.#count--;
    let hole = this.#places[slot]!;
    cells[2 * hole] = EMPTY;
    // Pull back each following cell that a probe from its home would no
    // longer reach past the hole, until an empty cell ends the run.
    for (let i = (hole + 1) & mask;; i = (i + 1) & mask) {
      const moved = cells[2 * i]!;
      if (moved === EMPTY) return;
      const hash = cells[2 * i + 1]!;
      const home = hash & mask;
      const reachable = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (reachable) continue;
      cells[2 * hole] = moved;
      cells[2 * hole + 1] = hash;
      this.#places[moved] = hole;
      cells[2 * i] = EMPTY;
      hole = i;
    }
  }

  /** Empties the table. */
  clear(): void {
    this.#cells = emptyCells(MIN_CELLS);
    this.#mask = MIN_CELLS - 1;
    this.#count = 0;
    this.#keys = [];
    this.#scopes = new Int32Array(MIN_CELLS);
    this.#places = new Int32Array(MIN_CELLS);
  }

  #place(slot: number, hash: number): void {
    const cells = this.#cells;
    const mask = this.#mask;
    let i = hash & mask;
    while (cells[2 * i] !== EMPTY) i = (i + 1) & mask;
    cells[2 * i] = slot;
    cells[2 * i + 1] = hash;
    this.#places[slot] = i;
  }

  #growSlots(slot: number): void {
    let size = this.#places.length * 2;
    while (size <= slot) size *= 2;
    const scopes = new Int32Array(size);
    const places = new Int32Array(size);
    scopes.set(this.#scopes);
    places.set(this.#places);
    this.#scopes = scopes;
    this.#places = places;
  }

  /** Doubles the cells (at most half are used), re-placing every slot by its kept hash. */
  #growCells(): void {
    const cells = this.#cells;
    const count = this.#mask + 1;
    this.#cells = emptyCells(count * 2);
    this.#mask = count * 2 - 1;
    for (let i = 0; i < count; i++) {
      if (cells[2 * i] !== EMPTY) this.#place(cells[2 * i]!, cells[2 * i + 1]!);
    }
  }
}

function emptyCells(count: number): Int32Array {
  const cells = new Int32Array(2 * count);
  for (let i = 0; i < cells.length; i += 2) cells[i] = EMPTY;
  return cells;
}
