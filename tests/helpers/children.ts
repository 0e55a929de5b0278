/**
 * Child processes a test started: killed when the test process exits, in
 * case a failing test never reached its cleanup.
 *
 * @module
 */

const live = new Set<Deno.ChildProcess>();

globalThis.addEventListener("unload", () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }
});

/** Kills `child` when this process exits, unless it has exited by then. */
export function trackChild(child: Deno.ChildProcess): void {
  live.add(child);
  const forget = () => live.delete(child);
  child.status.then(forget, forget);
}
