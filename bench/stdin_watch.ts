/**
 * Makes a bench child exit when the bench goes away: the bench holds this
 * process's stdin open as a pipe, and EOF on it means the bench ended, even
 * when it was killed without a chance to stop its children. `maxMs` bounds
 * the child's life in any case.
 *
 * @module
 */

/** Exits with `code` when stdin reaches EOF, or after `maxMs`. */
export function exitWithParent(maxMs: number, code = 3): void {
  const timer = setTimeout(() => Deno.exit(code), maxMs);
  Deno.unrefTimer(timer);
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) {
        // Nothing is sent on stdin; only its end matters.
      }
    } catch {
      // A read error means the same as EOF.
    }
    Deno.exit(code);
  })();
}
