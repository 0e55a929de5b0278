/**
 * The actions of the HTTP surface, each a POST with the token in the
 * `Authorization` header (never a GET, never the token in a URL): pause and
 * resume of an entry, on this daemon or on every nsqd, and replay of dead
 * letters. Every check comes in a fixed order: the method (405), the body
 * size (413, before the token, so that it holds for a caller without it,
 * and before any of a large body is read), the token (403 without one
 * configured, else 401), then the request itself.
 *
 * @module
 */

import type { Context, Hono, MiddlewareHandler } from "hono";
import { authorize } from "./bearer_auth.ts";
import { limitBody } from "./body_limit.ts";
import { entryKey } from "../history_sampler.ts";
import type { HandlerDeps } from "./handler_deps.ts";
import { deadLetterTopics } from "./page_state.ts";
import type { RefusalLog } from "./refusal_log.ts";
import { json } from "./response.ts";
import { entryJson } from "./stats_json.ts";

/** The token check of an action: 403 without a configured token, 401 without the right one. */
export function requireToken(deps: HandlerDeps, refusals: RefusalLog): MiddlewareHandler {
  return async (c, next) => {
    const refused = await authorize(deps.token, c.req.header("Authorization") ?? null);
    if (refused) {
      if (refused.status === 401) refusals.refused("wrong token", c.req.path);
      return refused;
    }
    return await next();
  };
}

/** A 405 naming the methods `path` takes. */
export function notAllowed(c: Context, allow: string): Response {
  return json(405, { error: `${c.req.method} is not allowed on ${c.req.path}; use ${allow}` }, {
    Allow: allow,
  });
}

/**
 * Adds the actions to `app`. `changed` is called after a pause or resume of
 * this daemon's entry, so that a client reads the new state at once.
 */
export function controlRoutes(
  app: Hono,
  deps: HandlerDeps,
  refusals: RefusalLog,
  changed: () => void,
): void {
  const guard = [limitBody(), requireToken(deps, refusals)] as const;
  app.post("/entries/:topic/:channel/:action{pause|resume}", ...guard, async (c) => {
    // The raw segments, decoded here: a broken percent-encoding is a 400.
    const [, , rawTopic, rawChannel, action] = new URL(c.req.url).pathname.split("/");
    const topic = decodeSegment(rawTopic!);
    const channel = decodeSegment(rawChannel!);
    if (topic === null || channel === null) {
      return json(400, { error: `${c.req.path} is not a valid URL path (bad percent-encoding)` });
    }
    const scope = c.req.query("scope") ?? "daemon";
    const pause = action === "pause";
    if (scope === "nsqd" && deps.page) {
      const answers = await deps.page.pauseChannel(topic, channel, pause);
      if (answers === null) return noEntry(topic, channel);
      const failed = answers.some((a) => a.result === "failed");
      return json(failed ? 502 : 200, { topic, channel, scope, paused: pause, nsqds: answers });
    }
    if (scope !== "daemon") {
      return json(400, {
        error: `scope must be daemon (this daemon: RDY 0) or nsqd (the channel on every nsqd), ` +
          `not ${JSON.stringify(scope)}`,
      });
    }
    const entry = pause ? deps.pause(topic, channel) : deps.resume(topic, channel);
    changed();
    if (entry === null) return noEntry(topic, channel);
    return json(200, entryJson(entry));
  });
  app.all("/entries/:topic/:channel/:action{pause|resume}", (c) => notAllowed(c, "POST"));

  let replaying = false;
  app.post("/dead-letters/replay", ...guard, async (c) => {
    const page = deps.page;
    if (!page) return json(404, { error: "replay is not served here" });
    const filter = await readReplayFilter(c);
    if (typeof filter === "string") return json(400, { error: filter });
    if (replaying) return json(409, { error: "a replay is running: wait for its counts" });
    const snapshot = deps.snapshot();
    const entry = filter.entry === null
      ? null
      : snapshot.entries.find((e) => entryKey(e.topic, e.channel) === filter.entry);
    if (entry === undefined) {
      return json(404, { error: `no entry ${JSON.stringify(filter.entry)} (topic/channel)` });
    }
    const topics = deadLetterTopics(snapshot, page, filter.entry);
    if (topics.length === 0) return json(400, { error: "dead letters are off for these entries" });
    replaying = true;
    try {
      const counts = await page.replay({
        topics,
        reasons: filter.reason === null ? [] : [filter.reason],
        workers: entry === null ? [] : [entry.worker],
        match: filter.match,
      });
      deps.log?.info("dead letters replayed over HTTP", { topics, ...counts });
      return json(200, { topics, ...counts });
    } finally {
      replaying = false;
    }
  });
  app.all("/dead-letters/replay", (c) => notAllowed(c, "POST"));
}

function noEntry(topic: string, channel: string): Response {
  return json(404, {
    error: `no entry consumes topic ${JSON.stringify(topic)} with channel ${
      JSON.stringify(channel)
    } (use the topic as configured, without topic_prefix)`,
  });
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** The body of a replay: `{"entry"?, "reason"?, "match"?}`, each a string or null. */
async function readReplayFilter(
  c: Context,
): Promise<{ entry: string | null; reason: string | null; match: string | null } | string> {
  const text = await c.req.text();
  let body: unknown = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      return `the body must be JSON {"entry", "reason", "match"}, found: ${text.slice(0, 80)}`;
    }
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return `the body must be a JSON object {"entry", "reason", "match"}, found: ${
      text.slice(0, 80)
    }`;
  }
  const fields = body as Record<string, unknown>;
  const read = (name: string): string | null | undefined => {
    const value = fields[name];
    if (value === undefined || value === null || value === "") return null;
    return typeof value === "string" ? value : undefined;
  };
  const entry = read("entry"), reason = read("reason"), match = read("match");
  if (entry === undefined || reason === undefined || match === undefined) {
    return "entry, reason and match must be strings (or null)";
  }
  return { entry, reason, match };
}
