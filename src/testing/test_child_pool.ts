/**
 * The kit's child process (`runWorker(…, { child })`): a pool of one, as an
 * entry with `processes: 1` has, running the test's worker module under
 * `child_main.ts`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { ChildPool } from "../child/child_pool.ts";
import { childPermissions, findDenoConfig } from "../child/child_program.ts";
import type { Logger, WorkerDefinition } from "../worker/worker.ts";
import type { RunWorkerOptions } from "./run_worker_options.ts";
import { settingDefault } from "./setting_default.ts";

/**
 * A pool of one child process running the module at `url`, which must be
 * where `worker` comes from (or the child would test another worker).
 */
export async function testChildPool(
  worker: WorkerDefinition,
  url: URL,
  options: RunWorkerOptions,
  workerLog: Logger,
): Promise<ChildPool> {
  const exported = (await import(url.href)).default;
  if (exported !== worker) {
    throw new TypeError(
      `runWorker's options.child must be the module whose default export is the worker given, ` +
        `got ${url.href}`,
    );
  }
  const dir = fileURLToPath(new URL(".", url));
  return new ChildPool({
    processes: 1,
    program: {
      execPath: Deno.execPath(),
      standalone: false,
      mainModule: new URL("./child_main.ts", import.meta.url).href,
      denoConfig: findDenoConfig(dir),
      permissions: childPermissions([dir]),
    },
    init: {
      worker: url.href,
      options: { ...options.options },
      topic: options.topic ?? "test",
      channel: options.channel ?? "test",
      logLevel: "debug",
    },
    timeoutMs: options.timeoutMs ?? settingDefault("timeout"),
    killGraceMs: options.killGraceMs ?? 5_000,
    memoryLimitMib: null,
    log: silentLogger(),
    workerLog,
  });
}

/** The kit's own lines about a child (a replacement, its stderr) are not the worker's logs. */
function silentLogger(): Logger {
  const ignore = () => {};
  return { debug: ignore, info: ignore, warning: ignore, error: ignore };
}
