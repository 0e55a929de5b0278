/**
 * The words of an entry's state cell on the page: its life, paused, its
 * circuit breaker and its child processes, read from the entry's `/stats`
 * JSON. The daemon renders them into the HTML (page_html.ts) and the page's
 * script embeds these same functions by their source (page_script.ts), so
 * that the page says the same with and without JavaScript. Hence each
 * function stands alone: it names nothing outside itself but built-ins.
 *
 * @module
 */

/** An entry's life, and "paused" when it is. */
export function stateWords(entry: { state: string; paused: boolean }): string[] {
  return entry.paused ? [entry.state, "paused"] : [entry.state];
}

/**
 * An entry's breaker (the `breaker` of its `/stats`) as one line, e.g.
 * `breaker open since 12:00:03 UTC · failure rate 60% · 4 requeued while open`;
 * null for an entry without one.
 */
export function breakerLine(breaker: unknown): string | null {
  if (breaker === null || typeof breaker !== "object") return null;
  const b = breaker as {
    state?: unknown;
    opened_at?: unknown;
    failure_rate?: unknown;
    excused_deliveries?: unknown;
  };
  const words = ["breaker " + String(b.state)];
  if (typeof b.opened_at === "string") words[0] += " since " + b.opened_at.slice(11, 19) + " UTC";
  if (typeof b.failure_rate === "number") {
    words.push("failure rate " + Math.round(b.failure_rate * 100) + "%");
  }
  if (typeof b.excused_deliveries === "number" && b.excused_deliveries > 0) {
    words.push(b.excused_deliveries + " requeued while open");
  }
  return words.join(" · ");
}

/**
 * One child process of an entry with `processes` (an item of the `children`
 * of its `/stats`), e.g. `pid 4242 · 61.2 MB · 1 restart · 3 in flight`.
 */
export function childLine(child: unknown): string {
  const c = (child ?? {}) as {
    pid?: unknown;
    rss_bytes?: unknown;
    restarts?: unknown;
    in_flight?: unknown;
  };
  // A slot whose child is being replaced has no pid for a moment.
  const words = [typeof c.pid === "number" ? "pid " + c.pid : "no process (restarting)"];
  if (typeof c.rss_bytes === "number" && c.rss_bytes > 0) {
    words.push((c.rss_bytes / 1e6).toFixed(1) + " MB");
  }
  const restarts = Number(c.restarts ?? 0);
  words.push(restarts + (restarts === 1 ? " restart" : " restarts"));
  words.push(Number(c.in_flight ?? 0) + " in flight");
  return words.join(" · ");
}
