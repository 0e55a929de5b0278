/**
 * The page at `GET /` and what it reads: its script and style (embedded
 * here, no CDN), the live state as server-sent events (at most one a second
 * per viewer, one rendering a second for all of them), the history and the
 * dead letters. With `http.token` configured every read needs the session
 * cookie that `POST /login` sets, or the token in the `Authorization`
 * header; without them the page is a 401 with the token form and nothing else.
 *
 * @module
 */

import type { Context, Hono, MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { authorize, sameSecret } from "./bearer_auth.ts";
import { limitBody } from "./body_limit.ts";
import { notAllowed } from "./control_routes.ts";
import type { TopicDepth } from "../dead_letter_depth.ts";
import { FreshFor } from "./fresh_for.ts";
import type { HandlerDeps } from "./handler_deps.ts";
import type { PageDeps } from "./page_deps.ts";
import { renderPage } from "./page_html.ts";
import { PAGE_SCRIPT } from "./page_script.ts";
import { endSessionCookie, hasSession, sessionCookie, sessionValue } from "./page_session.ts";
import {
  deadLetterFilter,
  deadLettersJson,
  deadLetterTopics,
  listDeadLetters,
  pageHistory,
  pageState,
} from "./page_state.ts";
import { PAGE_STYLE } from "./page_style.ts";
import type { RefusalLog } from "./refusal_log.ts";
import { json, JSON_TYPE, text } from "./response.ts";

/** A viewer gets the live state this often. */
export const PAGE_EVENT_MS = 1000;

/** nsqd is asked for the dead letter topics' depth at most this often. */
const DEPTH_MAX_AGE_MS = 2000;

const HTML_TYPE = "text/html; charset=utf-8";

/** Adds the page's routes to `app`. */
export function pageRoutes(
  app: Hono,
  deps: HandlerDeps,
  page: PageDeps,
  refusals: RefusalLog,
): void {
  const token = deps.token;
  const session = token === null ? null : sessionValue(token);
  const signedIn = async (c: Context): Promise<boolean> => {
    if (token === null) return true;
    if (await hasSession(c.req.header("Cookie") ?? null, await session!)) return true;
    const header = c.req.header("Authorization");
    return header !== undefined && (await authorize(token, header)) === null;
  };
  const readGuard: MiddlewareHandler = async (c, next) => {
    if (!(await signedIn(c))) {
      return json(401, {
        error: "the page needs the token: POST /login, or Authorization: Bearer",
      });
    }
    return await next();
  };
  const state = new FreshFor({ maxAgeMs: PAGE_EVENT_MS - 50 });
  const depths = depthCache(page);

  app.get("/page.js", () => text(200, PAGE_SCRIPT, "text/javascript; charset=utf-8"));
  app.get("/page.css", () => text(200, PAGE_STYLE, "text/css; charset=utf-8"));

  app.get("/", async (c) => {
    const filter = deadLetterFilter(new URL(c.req.url).searchParams);
    if (!(await signedIn(c))) {
      const view = { tokenRequired: true, state: null, history: null, deadLetters: null, filter };
      return text(401, renderPage(view), HTML_TYPE);
    }
    const snapshot = deps.snapshot();
    const list = listDeadLetters(snapshot, page, filter);
    const { entries: history } = pageHistory(snapshot, page);
    return text(
      200,
      renderPage({
        tokenRequired: token !== null,
        state: pageState(snapshot, page, token !== null),
        history,
        deadLetters: deadLettersJson(
          list,
          await depths(deadLetterTopics(snapshot, page, filter.entry)),
        ),
        filter,
      }),
      HTML_TYPE,
    );
  });

  app.post("/login", limitBody(), async (c) => {
    const wantsJson = (c.req.header("Accept") ?? "").includes("application/json");
    const form = new URLSearchParams(await c.req.text());
    const given = form.get("token") ?? "";
    if (token !== null && !(await sameSecret(given, token))) {
      refusals.refused("wrong token", c.req.path);
      const filter = { entry: null, reason: null, match: null };
      return wantsJson ? json(401, { error: "the token is not the configured http.token" }) : text(
        401,
        renderPage({
          tokenRequired: true,
          state: null,
          history: null,
          deadLetters: null,
          filter,
          loginFailed: true,
        }),
        HTML_TYPE,
      );
    }
    const headers: Record<string, string> = token === null
      ? {}
      : { "Set-Cookie": sessionCookie(await session!) };
    return wantsJson
      ? new Response(null, { status: 204, headers: { ...headers, "Cache-Control": "no-store" } })
      : new Response(null, { status: 303, headers: { ...headers, Location: "/" } });
  });
  app.post(
    "/logout",
    () =>
      new Response(null, {
        status: 303,
        headers: { "Set-Cookie": endSessionCookie(), Location: "/" },
      }),
  );

  app.get(
    "/page/state",
    readGuard,
    () =>
      text(
        200,
        state.get(() => JSON.stringify(pageState(deps.snapshot(), page, token !== null))),
        JSON_TYPE,
      ),
  );
  app.get(
    "/page/history",
    readGuard,
    () => text(200, JSON.stringify(pageHistory(deps.snapshot(), page)), JSON_TYPE),
  );
  app.get("/page/dead-letters", readGuard, async (c) => {
    const filter = deadLetterFilter(new URL(c.req.url).searchParams);
    const snapshot = deps.snapshot();
    const list = listDeadLetters(snapshot, page, filter);
    const topics = deadLetterTopics(snapshot, page, filter.entry);
    return text(200, JSON.stringify(deadLettersJson(list, await depths(topics))), JSON_TYPE);
  });
  app.get("/page/events", readGuard, (c) => {
    // HEAD comes here as a GET: its body would be dropped, so none is started.
    if (c.req.method === "HEAD") return text(200, "", "text/event-stream");
    return streamSSE(c, async (stream) => {
      const gone = new AbortController();
      stream.onAbort(() => gone.abort());
      // A viewer that stopped reading would hold a write, and the shutdown with it.
      const end = () => stream.abort();
      page.closing.addEventListener("abort", end);
      const signal = AbortSignal.any([gone.signal, page.closing]);
      try {
        while (!signal.aborted) {
          const data = state.get(() =>
            JSON.stringify(pageState(deps.snapshot(), page, token !== null))
          );
          await stream.writeSSE({ event: "state", data });
          await pause(PAGE_EVENT_MS, signal);
        }
      } finally {
        page.closing.removeEventListener("abort", end);
      }
    });
  });
  for (
    const path of [
      "/",
      "/page.js",
      "/page.css",
      "/page/state",
      "/page/history",
      "/page/dead-letters",
      "/page/events",
    ]
  ) {
    app.all(path, (c) => notAllowed(c, "GET, HEAD"));
  }
  for (const path of ["/login", "/logout"]) app.all(path, (c) => notAllowed(c, "POST"));
}

/** The depth of dead letter topics, each asked of nsqd at most every {@linkcode DEPTH_MAX_AGE_MS}. */
function depthCache(page: PageDeps) {
  const cache = new Map<string, { at: number; depth: Promise<TopicDepth> }>();
  return (topics: readonly string[]): Promise<TopicDepth[]> => {
    const now = performance.now();
    return Promise.all(topics.map((topic) => {
      const held = cache.get(topic);
      if (held && now - held.at < DEPTH_MAX_AGE_MS) return held.depth;
      const depth = page.topicDepth(topic);
      cache.set(topic, { at: now, depth });
      return depth;
    }));
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
