/**
 * The HTTP surface as one function, `(Request) => Response`, built from
 * injected functions: tests call it directly, and only the composition root
 * puts it behind a server.
 *
 * | route                                    | answer                                        |
 * | ---------------------------------------- | --------------------------------------------- |
 * | `GET /ping`                              | 200 `OK`                                      |
 * | `GET /ready`                             | 200 `{"ready":true}`, or 503 with `reasons`   |
 * | `GET /stats`                             | 200 JSON: the daemon and each entry           |
 * | `GET /metrics`                           | 200 Prometheus text format 0.0.4              |
 * | `POST /entries/{topic}/{channel}/pause`  | 200 the entry's stats, RDY 0 on its nsqd      |
 * | `POST /entries/{topic}/{channel}/resume` | 200 the entry's stats, RDY given back         |
 *
 * Pause and resume need `Authorization: Bearer <http.token>`: without a
 * configured token they are disabled (403, whatever the request carries);
 * without the header, or with another token, 401 with `WWW-Authenticate`.
 * The token check comes before the entry lookup, so that a caller without
 * the token cannot probe which entries exist. Errors are JSON:
 * `{"error": "…"}`.
 *
 * @module
 */

import { renderMetrics } from "./metrics.ts";
import { METRICS_CONTENT_TYPE } from "./prometheus.ts";
import type { Readiness } from "../supervisor.ts";
import type { Logger } from "../../worker/worker.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./snapshot.ts";
import { errorText } from "../../error_text.ts";
import { FreshFor } from "./fresh_for.ts";
import { RefusalLog } from "./refusal_log.ts";
import { refuseLargeBody } from "./body_limit.ts";
import { authorize } from "./bearer_auth.ts";
import { entryJson, statsJson } from "./stats_json.ts";
import { json, JSON_TYPE, text } from "./response.ts";

/** What the HTTP surface reads and does; the composition root supplies it. */
export interface HandlerDeps {
  /** Whether the daemon takes messages (`GET /ready`). */
  readiness(): Readiness;
  /** The daemon's figures now (`GET /stats`, `GET /metrics`). */
  snapshot(): DaemonSnapshot;
  /** Pauses the entry; its figures afterwards, or null when no entry has this topic and channel. */
  pause(topic: string, channel: string): EntrySnapshot | null;
  /** Resumes the entry; its figures afterwards, or null when no entry has this topic and channel. */
  resume(topic: string, channel: string): EntrySnapshot | null;
  /** The bearer token of pause and resume; null disables them. */
  readonly token: string | null;
  /** Where a route that throws is reported (it answers 500). */
  readonly log?: Logger;
  /**
   * How long a rendering of `/stats` and `/metrics` is served again
   * (default {@linkcode RENDER_MAX_AGE_MS}); 0 renders every request.
   */
  readonly renderMaxAgeMs?: number;
}

/**
 * `/stats` and `/metrics` are rendered at most this often: polled 1,000
 * times a second they cost the message path about 10 % of its throughput
 * when rendered each time, and nobody scrapes figures this fresh.
 */
export const RENDER_MAX_AGE_MS = 100;

/** A request handler, as `Deno.serve` takes it. */
export type Handler = (request: Request) => Promise<Response>;

const ROUTES = "GET /ping, /ready, /stats, /metrics; POST /entries/{topic}/{channel}/pause|resume";

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
  const renders: Renders = {
    stats: new FreshFor({ maxAgeMs }),
    metrics: new FreshFor({ maxAgeMs }),
  };
  return async (request) => {
    let response: Response;
    try {
      response = await route(deps, request, refusals, renders);
    } catch (error) {
      deps.log?.error("HTTP request failed", {
        method: request.method,
        path: new URL(request.url).pathname,
        error: errorText(error),
      });
      response = json(500, { error: "internal error; the daemon's log has the details" });
    }
    return request.method === "HEAD"
      ? new Response(null, { status: response.status, headers: response.headers })
      : response;
  };
}

/** The cached renderings of the figures. */
interface Renders {
  readonly stats: FreshFor;
  readonly metrics: FreshFor;
}

async function route(
  deps: HandlerDeps,
  request: Request,
  refusals: RefusalLog,
  renders: Renders,
): Promise<Response> {
  const path = new URL(request.url).pathname;
  const method = request.method;
  switch (path) {
    case "/ping":
      return onlyGet(method, path) ?? text(200, "OK", "text/plain; charset=utf-8");
    case "/ready":
      return onlyGet(method, path) ?? ready(deps.readiness());
    case "/stats":
      return onlyGet(method, path) ??
        text(
          200,
          renders.stats.get(() => JSON.stringify(statsJson(deps.snapshot()))),
          JSON_TYPE,
        );
    case "/metrics":
      return onlyGet(method, path) ??
        text(200, renders.metrics.get(() => renderMetrics(deps.snapshot())), METRICS_CONTENT_TYPE);
  }
  const parts = path.split("/");
  if (parts.length === 5 && parts[0] === "" && parts[1] === "entries") {
    const action = parts[4];
    if (action === "pause" || action === "resume") {
      const response = await control(deps, request, refusals, path, parts[2]!, parts[3]!, action);
      // A client that paused an entry reads it paused at once.
      renders.stats.clear();
      renders.metrics.clear();
      return response;
    }
  }
  return json(404, { error: `no such endpoint: ${path}; there are ${ROUTES}` });
}

function onlyGet(method: string, path: string): Response | null {
  if (method === "GET" || method === "HEAD") return null;
  return notAllowed(method, path, "GET, HEAD");
}

function notAllowed(method: string, path: string, allow: string): Response {
  return json(405, { error: `${method} is not allowed on ${path}; use ${allow}` }, {
    Allow: allow,
  });
}

function ready(readiness: Readiness): Response {
  return readiness.ready
    ? json(200, { ready: true })
    : json(503, { ready: false, reasons: readiness.reasons });
}

async function control(
  deps: HandlerDeps,
  request: Request,
  refusals: RefusalLog,
  path: string,
  rawTopic: string,
  rawChannel: string,
  action: "pause" | "resume",
): Promise<Response> {
  if (request.method !== "POST") return notAllowed(request.method, path, "POST");
  const tooLarge = await refuseLargeBody(request, path);
  if (tooLarge) return tooLarge;
  const refused = await authorize(deps.token, request.headers.get("Authorization"));
  if (refused) {
    if (refused.status === 401) refusals.refused("wrong token", path);
    return refused;
  }
  const topic = decodeSegment(rawTopic);
  const channel = decodeSegment(rawChannel);
  if (topic === null || channel === null) {
    return json(400, { error: `${path} is not a valid URL path (bad percent-encoding)` });
  }
  const entry = action === "pause" ? deps.pause(topic, channel) : deps.resume(topic, channel);
  if (entry === null) {
    return json(404, {
      error: `no entry consumes topic ${JSON.stringify(topic)} with channel ${
        JSON.stringify(channel)
      } (use the topic as configured, without topic_prefix)`,
    });
  }
  return json(200, entryJson(entry));
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
