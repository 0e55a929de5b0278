/**
 * Counts page views: the demo worker that `config.yaml` runs.
 *
 * Publish one with
 * `curl -d '{"event_id":"e1","clicks":1}' 'http://127.0.0.1:4151/pub?topic=pageviews'`.
 */
import { defineWorker } from "../../src/mod.ts";

/** The event producers publish to `pageviews`. */
interface PageView {
  event_id?: string;
  clicks: number;
}

export default defineWorker<PageView, { label: string; counted_topic: string | null }>({
  options: { label: "demo", counted_topic: null },
  validate: (body) => typeof body === "object" && body !== null && typeof body.clicks === "number",
  // Producers that retry publish the same event twice; the event id catches that.
  dedupeKey: (body, message) => body.event_id ?? message.id,
  async handle(body, ctx) {
    ctx.log.info("pageview", { clicks: body.clicks, label: ctx.options.label });
    if (ctx.options.counted_topic !== null) {
      await ctx.publish(ctx.options.counted_topic, { id: body.event_id ?? ctx.message.id });
    }
  },
});
