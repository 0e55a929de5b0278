/**
 * The HTTP surface as one function, `(Request) => Response`, built from
 * injected functions: tests call it directly, and only the composition root
 * puts it behind a server. Routing, the security headers and server-sent
 * events are Hono's. The token check (bearer_auth.ts) and the body limit
 * (body_limit.ts) are this project's own: Hono's `bearerAuth` answers 400 to
 * a malformed header where a client is owed a 401 challenge, and refuses
 * any token outside RFC 6750's characters while `http.token` may be any
 * text; its `bodyLimit` leaves an oversized chunked body hanging.
 *
 * | route                                    | answer                                        |
 * | ---------------------------------------- | --------------------------------------------- |
 * | `GET /ping`                              | 200 `OK`                                      |
 * | `GET /ready`                             | 200 `{"ready":true}`, or 503 with `reasons`   |
 * | `GET /stats`                             | 200 JSON: the daemon and each entry           |
 * | `GET /metrics`                           | 200 Prometheus text format 0.0.4              |
 * | `POST /entries/{topic}/{channel}/pause`  | 200 the entry's stats, RDY 0 on its nsqd      |
 * | `POST /entries/{topic}/{channel}/resume` | 200 the entry's stats, RDY given back         |
 * | `…/pause?scope=nsqd`, `…/resume?scope=nsqd` | the channel paused on every nsqd itself    |
 * | `POST /dead-letters/replay`              | 200 the replay's counts                       |
 * | `GET /`                                  | the page (page_routes.ts)                     |
 *
 * Actions need `Authorization: Bearer <http.token>`: without a configured
 * token they are disabled (403, whatever the request carries); without the
 * header, or with another token, 401 with `WWW-Authenticate`. The token
 * check comes before the entry lookup, so that a caller without the token
 * cannot probe which entries exist. Errors are JSON: `{"error": "…"}`.
 * Every answer carries a Content-Security-Policy that allows nothing but
 * script, style and requests of this origin.
 *
 * @module
 */

import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { renderMetrics } from "./metrics.ts";
import { METRICS_CONTENT_TYPE } from "./prometheus.ts";
import type { Readiness } from "../supervisor.ts";
import { errorText } from "../../error_text.ts";
import { controlRoutes, notAllowed } from "./control_routes.ts";
import { FreshFor } from "./fresh_for.ts";
import { pageRoutes } from "./page_routes.ts";
import { RefusalLog } from "./refusal_log.ts";
import { statsJson } from "./stats_json.ts";
import type { HandlerDeps } from "./handler_deps.ts";
import { json, JSON_TYPE, text } from "./response.ts";

export type { HandlerDeps };

/**
 * `/stats` and `/metrics` are rendered at most this often: polled 1,000
 * times a second they cost the message path about 10 % of its throughput
 * when rendered each time, and nobody scrapes figures this fresh.
 */
export const RENDER_MAX_AGE_MS = 100;

/** A request handler, as `Deno.serve` takes it. */
export type Handler = (request: Request) => Promise<Response>;

const ROUTES = "GET /, /ping, /ready, /stats, /metrics; " +
  "POST /entries/{topic}/{channel}/pause|resume, /dead-letters/replay";

/**
 * What every answer allows the browser: script, style, requests and forms
 * of this origin only; no inline script or style, no frame, no plugin.
 */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

/**
 * Builds the handler.
 *
 * @example
 * ```ts
 * import { createHandler } from "./handler.ts";
 * import type { DaemonSnapshot } from "./snapshot.ts";
 *
 * declare const snapshot: () => DaemonSnapshot;
 * const handler = createHandler({
 *   readiness: () => ({ ready: true, reasons: [] }),
 *   snapshot,
 *   pause: () => null,
 *   resume: () => null,
 *   token: null,
 * });
 * const response = await handler(new Request("http://localhost/ping"));
 * await response.text(); // "OK"
 * ```
 */
export function createHandler(deps: HandlerDeps): Handler {
  const refusals = new RefusalLog(deps.log);
  const maxAgeMs = deps.renderMaxAgeMs ?? RENDER_MAX_AGE_MS;
  const stats = new FreshFor({ maxAgeMs });
  const metrics = new FreshFor({ maxAgeMs });
  const app = new Hono();
  app.use(secureHeaders({
    contentSecurityPolicy: CONTENT_SECURITY_POLICY,
    // Plain HTTP on loopback is the usual case; HSTS belongs to a TLS proxy in front.
    strictTransportSecurity: false,
  }));
  app.onError((error, c) => {
    deps.log?.error("HTTP request failed", {
      method: c.req.method,
      path: c.req.path,
      error: errorText(error),
    });
    return json(500, { error: "internal error; the daemon's log has the details" });
  });
  app.notFound((c) => json(404, { error: `no such endpoint: ${c.req.path}; there are ${ROUTES}` }));

  app.get("/ping", () => text(200, "OK", "text/plain; charset=utf-8"));
  app.get("/ready", () => ready(deps.readiness()));
  app.get(
    "/stats",
    () => text(200, stats.get(() => JSON.stringify(statsJson(deps.snapshot()))), JSON_TYPE),
  );
  app.get(
    "/metrics",
    () => text(200, metrics.get(() => renderMetrics(deps.snapshot())), METRICS_CONTENT_TYPE),
  );
  for (const path of ["/ping", "/ready", "/stats", "/metrics"]) {
    app.all(path, (c) => notAllowed(c, "GET, HEAD"));
  }
  controlRoutes(app, deps, refusals, () => {
    // A client that paused an entry reads it paused at once.
    stats.clear();
    metrics.clear();
  });
  if (deps.page) pageRoutes(app, deps, deps.page, refusals);
  return async (request) => await app.fetch(request);
}

function ready(readiness: Readiness): Response {
  return readiness.ready
    ? json(200, { ready: true })
    : json(503, { ready: false, reasons: readiness.reasons });
}
