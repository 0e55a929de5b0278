/**
 * What the HTTP surface reads and does, as the composition root supplies it:
 * apart from the handler so that its routes can name it too.
 *
 * @module
 */

import type { Readiness } from "../supervisor.ts";
import type { Logger } from "../../worker/worker.ts";
import type { DaemonSnapshot, EntrySnapshot } from "./snapshot.ts";
import type { PageDeps } from "./page_deps.ts";

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
  /** The bearer token of the actions and the page; null disables the actions. */
  readonly token: string | null;
  /** Where a route that throws is reported (it answers 500). */
  readonly log?: Logger;
  /**
   * How long a rendering of `/stats` and `/metrics` is served again
   * (default `RENDER_MAX_AGE_MS` of handler.ts); 0 renders every request.
   */
  readonly renderMaxAgeMs?: number;
  /** The page's reads and actions; without them there is no page, nsqd pause or replay. */
  readonly page?: PageDeps;
}
