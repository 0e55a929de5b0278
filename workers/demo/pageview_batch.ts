/**
 * Stores page views in bulk: the demo of `handleBatch`, for sinks that write
 * many rows in one call (a database bulk insert, a bulk HTTP API).
 *
 * Run it with an entry such as
 * `{ topic: pageviews, channel: store, worker: demo/pageview_batch, max_in_flight: 200 }`.
 */
import { defineWorker, PermanentError } from "../../src/mod.ts";

/** The event producers publish to `pageviews`. */
interface PageView {
  event_id?: string;
  clicks: number;
}

export default defineWorker<PageView>({
  // Defaults; an entry's `batch: { size, wait }` overrides them (size ≤ its max_in_flight).
  batch: { size: 100, wait: 1_000 },
  // Both run per message, before it joins a batch: an invalid one is dead-lettered alone,
  // a duplicate finished alone.
  validate: (body) => typeof body === "object" && body !== null && typeof body.clicks === "number",
  dedupeKey: (body) => body.event_id,
  async handleBatch(items, ctx) {
    // A real sink would send the valid rows in one call, e.g. `await db.insertMany(rows)`,
    // with `ctx.signal` so that the call stops at the entry's timeout.
    const rows = items.filter(({ body }) => body.clicks >= 0).map(({ body }) => body);
    await new Promise((resolve) => setTimeout(resolve, 1));
    ctx.log.info("pageviews stored", { rows: rows.length, of: items.length });
    // One result per item: undefined finishes it, an Error retries it, a PermanentError
    // dead-letters it. Returning nothing finishes them all; throwing retries them all.
    return items.map(({ body }) =>
      body.clicks < 0 ? new PermanentError("negative clicks") : undefined
    );
  },
});
