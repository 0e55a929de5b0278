/**
 * One timer for many: a min-heap of due times driven by a single
 * `setTimeout`, armed for the earliest of them.
 *
 * @module
 */

/** Something a {@linkcode TimerQueue} holds; the queue keeps `due` and `slot` up to date. */
export interface Timed {
  /** When it is due, on the queue's clock; meaningful while queued. */
  due: number;
  /** Its place in the heap; -1 while not queued. */
  slot: number;
  /** Called once it is due and out of the queue; it may queue itself again. */
  fire(now: number): void;
}

/** Options of {@linkcode TimerQueue}. */
export interface TimerQueueOptions {
  /** The time in milliseconds, as due times are given (may lag by a turn). */
  readonly now: () => number;
  /** Reads the clock afresh when the timer fires (default `now`). */
  readonly read?: () => number;
}

/** setTimeout fires at once for anything longer. */
const MAX_DELAY_MS = 2_147_483_647;

/**
 * Due items, earliest first. Adding and removing cost O(log n) and no system
 * timer: the one `setTimeout` moves only when the earliest due time comes
 * sooner, and is cleared when the queue empties (so nothing holds the process
 * open). A removed head leaves the timer armed; it then fires early, finds
 * nothing due, and re-arms.
 *
 * @example
 * ```ts
 * import { TimerQueue } from "./timer_queue.ts";
 *
 * const timers = new TimerQueue({ now: () => performance.now() });
 * const item = { due: 0, slot: -1, fire: () => console.log("due") };
 * timers.add(item, performance.now() + 100);
 * timers.remove(item); // nothing fires
 * ```
 */
export class TimerQueue {
  readonly #heap: Timed[] = [];
  readonly #now: () => number;
  readonly #read: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The due time the timer is armed for; Infinity when disarmed. */
  #armedFor = Infinity;
  readonly #onTimer = () => this.#fire();

  constructor(options: TimerQueueOptions) {
    this.#now = options.now;
    this.#read = options.read ?? options.now;
  }

  /** How many items are queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** Queues `item` to fire at `due`; it must not be queued already. */
  add(item: Timed, due: number): void {
    item.due = due;
    item.slot = this.#heap.length;
    this.#heap.push(item);
    this.#up(item.slot);
    if (due < this.#armedFor) this.#arm(due);
  }

  /** Takes `item` out of the queue, if it is there. */
  remove(item: Timed): void {
    const slot = item.slot;
    if (slot < 0) return;
    item.slot = -1;
    const last = this.#heap.pop()!;
    if (last !== item) {
      this.#heap[slot] = last;
      last.slot = slot;
      this.#down(slot);
      this.#up(last.slot);
    }
    if (this.#heap.length === 0) this.#disarm();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#read();
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.due <= now) {
      const item = heap[0]!;
      this.remove(item);
      item.fire(now);
    }
    if (heap.length > 0 && heap[0]!.due < this.#armedFor) this.#arm(heap[0]!.due);
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedFor = due;
    const delay = Math.min(Math.max(0, due - this.#now()), MAX_DELAY_MS);
    this.#timer = setTimeout(this.#onTimer, delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #up(slot: number): void {
    const heap = this.#heap;
    const item = heap[slot]!;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot]!;
      if (parent.due <= item.due) break;
      heap[slot] = parent;
      parent.slot = slot;
      slot = parentSlot;
    }
    heap[slot] = item;
    item.slot = slot;
  }

  #down(slot: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[slot]!;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right]!.due < heap[left]!.due ? right : left;
      if (heap[child]!.due >= item.due) break;
      heap[slot] = heap[child]!;
      heap[slot]!.slot = slot;
      slot = child;
    }
    heap[slot] = item;
    item.slot = slot;
  }
}
