/**
 * Resolves `worker: a/b` to the module `workers/a/b.ts` and checks its
 * default export. Worker code comes only from `workers/`: in the compiled
 * binary that folder is embedded (`--include workers/`), and the dynamic
 * import below resolves inside it the same way it does from a checkout.
 *
 * @module
 */

import { ConfigError, type ConfigIssue } from "./config/config_error.ts";
import { WORKER_NAME } from "./config/names.ts";
import type { Config } from "./config/types.ts";
import type { WorkerDefinition, WorkerOptions } from "./worker.ts";

/** The `workers/` folder beside `src/`; in the compiled binary, its embedded copy. */
export const WORKERS_DIR: URL = new URL("../workers/", import.meta.url);

const DEFINITION_KEYS = new Set([
  "options",
  "decode",
  "validate",
  "dedupeKey",
  "setup",
  "handle",
  "teardown",
]);
const FUNCTION_KEYS = ["validate", "dedupeKey", "setup", "handle", "teardown"] as const;
const DECODERS = new Set(["json", "text", "bytes"]);

/** A worker module that failed to resolve, load or pass the shape check. */
export class WorkerLoadError extends Error {
  /** `message` starts with the module's path, e.g. `workers/a/b.ts: …`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerLoadError";
  }
}

/** A loaded worker with the options of one entry merged over its defaults. */
export interface LoadedWorker {
  readonly name: string;
  /** `workers/<name>.ts`, for messages. */
  readonly file: string;
  readonly definition: WorkerDefinition;
  readonly options: Readonly<WorkerOptions>;
}

/** The path of a worker's module relative to the project, e.g. `workers/demo/pageview.ts`. */
export function workerFile(name: string): string {
  return `workers/${name}.ts`;
}

/**
 * Imports `workers/<name>.ts`, checks its default export and merges
 * `entryOptions` over the worker's own `options`.
 */
export async function loadWorker(
  name: string,
  entryOptions: Readonly<WorkerOptions> = {},
  workersDir: URL = WORKERS_DIR,
): Promise<LoadedWorker> {
  if (!WORKER_NAME.test(name)) {
    throw new WorkerLoadError(
      `worker must be a module name under workers/ such as demo/pageview, got ${
        JSON.stringify(name)
      }`,
    );
  }
  const file = workerFile(name);
  const url = new URL(`${name}.ts`, workersDir);
  let module: Record<string, unknown>;
  try {
    module = await import(url.href);
  } catch (error) {
    throw new WorkerLoadError(`${file}: ${describeImportError(error, url)}`, { cause: error });
  }
  const definition = checkDefinition(file, module.default);
  return Object.freeze({
    name,
    file,
    definition,
    options: Object.freeze(mergeOptions(file, definition.options, entryOptions)),
  });
}

/**
 * Loads the worker of every entry of `config`, in order. Every failure is
 * reported, at the `worker:` line of its entry, in one {@link ConfigError}.
 */
export async function loadEntryWorkers(
  config: Config,
  workersDir: URL = WORKERS_DIR,
): Promise<LoadedWorker[]> {
  const results = await Promise.allSettled(
    config.workers.map((entry) => loadWorker(entry.worker, entry.options, workersDir)),
  );
  const issues: ConfigIssue[] = [];
  const loaded: LoadedWorker[] = [];
  for (const [i, result] of results.entries()) {
    if (result.status === "fulfilled") {
      loaded.push(result.value);
      continue;
    }
    const { file, line, col } = config.workers[i]!.workerLocation;
    const reason = result.reason;
    if (!(reason instanceof WorkerLoadError)) throw reason;
    issues.push({ file, line, col, path: `workers[${i}].worker`, message: reason.message });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return loaded;
}

function describeImportError(error: unknown, url: URL): string {
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split("\n", 1)[0] ?? "";
  if (firstLine.includes("Module not found") && firstLine.includes(url.href)) {
    return "no such worker module";
  }
  return `cannot be loaded: ${firstLine}`;
}

function checkDefinition(file: string, value: unknown): WorkerDefinition {
  if (value === undefined) {
    throw new WorkerLoadError(
      `${file}: has no default export (export default defineWorker({...}))`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new WorkerLoadError(
      `${file}: default export must be an object made by defineWorker(), got ${describe(value)}`,
    );
  }
  const definition = value as Record<string, unknown>;
  for (const key of Object.keys(definition)) {
    if (!DEFINITION_KEYS.has(key)) {
      throw new WorkerLoadError(
        `${file}: default export has an unknown key ${JSON.stringify(key)} (known: ${
          [...DEFINITION_KEYS].join(", ")
        })`,
      );
    }
  }
  if (typeof definition.handle !== "function") {
    throw new WorkerLoadError(`${file}: default export has no handle() function`);
  }
  for (const key of FUNCTION_KEYS) {
    const hook = definition[key];
    if (hook !== undefined && typeof hook !== "function") {
      throw new WorkerLoadError(`${file}: ${key} must be a function, got ${describe(hook)}`);
    }
  }
  const decode = definition.decode;
  if (decode !== undefined && typeof decode !== "function" && !DECODERS.has(decode as string)) {
    throw new WorkerLoadError(
      `${file}: decode must be "json", "text", "bytes" or a function, got ${describe(decode)}`,
    );
  }
  const options = definition.options;
  if (options !== undefined && !isPlainObject(options)) {
    throw new WorkerLoadError(`${file}: options must be an object, got ${describe(options)}`);
  }
  return definition as unknown as WorkerDefinition;
}

/**
 * A worker that declares `options` names every option it reads, so an entry
 * option it does not declare is a typo, and one of another type a mistake.
 */
function mergeOptions(
  file: string,
  defaults: WorkerOptions | undefined,
  entryOptions: Readonly<WorkerOptions>,
): WorkerOptions {
  if (defaults === undefined) return { ...entryOptions };
  for (const [key, value] of Object.entries(entryOptions)) {
    if (!Object.hasOwn(defaults, key)) {
      throw new WorkerLoadError(
        `${file}: options.${key} is not an option of this worker (its options: ${
          Object.keys(defaults).join(", ") || "none"
        })`,
      );
    }
    const fallback = defaults[key];
    if (fallback !== null && value !== null && kind(fallback) !== kind(value)) {
      throw new WorkerLoadError(
        `${file}: options.${key} must be ${kind(fallback)} like its default ${
          JSON.stringify(fallback)
        }, got ${describe(value)}`,
      );
    }
  }
  return { ...defaults, ...entryOptions };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (isPlainObject(value)) return "a mapping";
  return `a ${typeof value}`;
}

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
