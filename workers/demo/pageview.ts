/**
 * Counts page views: the demo worker that `config.yaml` runs.
 *
 * Publish one with
 * `curl -d '{"event_id":"e1","clicks":1}' 'http://127.0.0.1:4151/pub?topic=pageviews'`.
 */
import { z } from "zod";
import { defineWorker, PermanentError } from "../../src/mod.ts";

/** The event producers publish to `pageviews`; any Standard Schema (zod, valibot…) will do. */
const PageView = z.object({ event_id: z.string().optional(), clicks: z.number() });

/** A type, not an interface: worker options must be indexable by string. */
type PageViewOptions = {
  label: string;
  /** Where to publish `{ id }` for each page view counted; null: nowhere. */
  counted_topic: string | null;
};
const defaults: PageViewOptions = { label: "demo", counted_topic: null };

export default defineWorker({
  options: defaults, // the entry's options merge over them
  decode: "json", // "json" (default) | "text" | "bytes" | (bytes) => T
  // body's type comes from the schema; a body that fails it → dead letter listing each issue
  schema: PageView,
  // Producers that retry publish the same event twice; the event id catches that.
  dedupeKey: (body) => body.event_id, // undefined: the default key (message id); null: no dedupe
  setup(ctx) { // once, before the consumer connects; a throw fails this entry only
    ctx.log.info("counting page views", { label: ctx.options.label });
  },
  async handle(body, ctx) { // return → FIN; throw → retry with backoff
    if (body.clicks < 0) throw new PermanentError("negative clicks"); // → dead letter at once
    ctx.log.info("pageview", { clicks: body.clicks, label: ctx.options.label });
    if (ctx.options.counted_topic !== null) {
      await ctx.publish(ctx.options.counted_topic, { id: body.event_id ?? ctx.message.id });
    }
  },
  teardown(ctx) { // once, after the consumer has drained
    ctx.log.info("stopped counting page views", { label: ctx.options.label });
  },
});
