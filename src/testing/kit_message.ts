/**
 * A message as the kit delivers it: the body a test gives, as nsqd would
 * deliver it, on no connection.
 *
 * @module
 */

import type { TaskMessage } from "../runner/task_runner.ts";
import type { RunWorkerOptions } from "./run_worker_options.ts";

/** A delivery of `body` as nsqd would make it, on no connection. */
export function kitMessage(body: unknown, options: RunWorkerOptions, id: string): TaskMessage {
  const topic = options.topic ?? "test";
  const channel = options.channel ?? "test";
  return {
    id,
    attempts: options.attempts ?? 1,
    timestamp: Date.now(),
    body: rawBody(body),
    msgTimeoutMs: 60_000,
    touch() {},
    idScope: `${topic}/${channel}@test`,
  };
}

/** A new NSQ message id: 16 hex digits. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function rawBody(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return new TextEncoder().encode(body);
  const json = JSON.stringify(body);
  if (json === undefined) {
    throw new TypeError(
      `runWorker needs a body of bytes, a string or a JSON value, got ${typeof body}`,
    );
  }
  return new TextEncoder().encode(json);
}
