/**
 * Small stand-ins shared by tests: a handler context that publishes nowhere,
 * and a trap for errors nobody caught.
 *
 * @module
 */

import type { ConnectionOptions } from "../../src/nsq/connection_options.ts";
import type { TaskMessage } from "../../src/runner/task_runner.ts";
import type { WorkerContext } from "../../src/worker/worker.ts";

/** nsqd connection settings without TLS, auth or compression. */
export const PLAIN_CONNECTION: ConnectionOptions = {
  authSecret: null,
  tls: null,
  compression: "none",
  heartbeatIntervalMs: 30_000,
  idleTimeoutMs: 65_000,
};

/** A handler `ctx` for the task runner: logs and publishes go nowhere. */
export function fakeContext(message: TaskMessage, signal: AbortSignal): WorkerContext {
  const log = { debug() {}, info() {}, warning() {}, error() {} };
  return {
    topic: "pageviews",
    channel: "counter",
    worker: "test/worker",
    options: {},
    log,
    message,
    signal,
    touch: () => message.touch(),
    publish: () => Promise.resolve(),
    publishMany: () => Promise.resolve(),
    publishDeferred: () => Promise.resolve(),
  };
}

/**
 * Records errors nobody caught (an `error` event without a listener, a throw
 * in a socket handler) instead of letting them end the test process, so a
 * test can show that there were none.
 */
export function trapUncaught(): { readonly errors: unknown[] } & Disposable {
  const errors: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    errors.push(event.error);
  };
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    errors.push(event.reason);
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return {
    errors,
    [Symbol.dispose]() {
      globalThis.removeEventListener("error", onError);
      globalThis.removeEventListener("unhandledrejection", onRejection);
    },
  };
}
