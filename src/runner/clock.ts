/**
 * A monotonic clock read once per turn of the event loop: every message of a
 * socket read shares one reading, where `performance.now()` is a call into
 * the runtime each time.
 *
 * @module
 */

let cached = 0;
let fresh = false;

function expire(): void {
  fresh = false;
}

/**
 * The time in milliseconds (`performance.now()`), as read at most once until
 * the current task's microtasks have run: a start time, or the time a
 * deadline is due from. It can lag the real time by what ran since the read.
 */
export function turnNow(): number {
  return fresh ? cached : readNow();
}

/**
 * Reads the clock now and keeps the reading for {@linkcode turnNow}: the end
 * of a duration, which is also the start of whatever runs next.
 */
export function readNow(): number {
  cached = performance.now();
  if (!fresh) {
    fresh = true;
    queueMicrotask(expire);
  }
  return cached;
}
