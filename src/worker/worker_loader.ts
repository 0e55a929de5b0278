/**
 * Resolves `worker: a/b` to the module `workers/a/b.ts` and checks its
 * default export. Worker code comes only from `workers/`: in the compiled
 * binary that folder is embedded (`--include workers/`), and the dynamic
 * import below resolves inside it the same way it does from a checkout.
 *
 * @module
 */

import type { ConfigIssue } from "../config/config_error.ts";
import { WORKER_NAME } from "../config/names.ts";
import type { KeyLocation } from "../config/reader.ts";
import type { WorkerReference } from "../config/types.ts";
import type { WorkerDefinition, WorkerOptions } from "./worker.ts";
import { errorText } from "../error_text.ts";
import { closest } from "../config/suggest.ts";
import { workerNames } from "./worker_names.ts";

/** The `workers/` folder beside `src/`; in the compiled binary, its embedded copy. */
export const WORKERS_DIR: URL = new URL("../../workers/", import.meta.url);

const DEFINITION_KEYS = new Set([
  "options",
  "decode",
  "schema",
  "validate",
  "dedupeKey",
  "orderKey",
  "setup",
  "handle",
  "handleBatch",
  "batch",
  "teardown",
]);
const FUNCTION_KEYS = ["validate", "dedupeKey", "orderKey", "setup", "teardown"] as const;
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

/**
 * Where worker modules come from: resolves a worker name to its module's
 * default export, or throws a {@link WorkerLoadError}. The daemon imports
 * from `workers/`; tests hand definitions over inline.
 */
export type WorkerSource = (name: string) => Promise<unknown>;

/** The path of a worker's module relative to the project, e.g. `workers/demo/pageview.ts`. */
export function workerFile(name: string): string {
  return `workers/${name}.ts`;
}

/** Imports `workers/<name>.ts` from `workersDir` and gives its default export. */
export function moduleSource(workersDir: URL = WORKERS_DIR): WorkerSource {
  return async (name) => {
    if (!WORKER_NAME.test(name)) {
      throw new WorkerLoadError(
        `worker must be a module name under workers/ such as demo/pageview, got ${
          JSON.stringify(name)
        }`,
      );
    }
    const url = new URL(`${name}.ts`, workersDir);
    let module: Record<string, unknown>;
    try {
      module = await import(url.href);
    } catch (error) {
      throw new WorkerLoadError(await describeImportError(error, url, name, workersDir), {
        cause: error,
      });
    }
    return module.default;
  };
}

/** The workers of a config, by entry index, and every problem found loading them. */
export interface LoadedWorkers {
  readonly workers: ReadonlyMap<number, LoadedWorker>;
  readonly issues: readonly ConfigIssue[];
}

/**
 * Loads the worker of every reference and checks it against its entry's
 * options. A module that cannot be loaded, or whose default export has the
 * wrong shape, is reported at its `worker:`; a bad option at the option
 * itself (`keys` says where each is written). Nothing throws but the
 * unexpected.
 */
export async function loadWorkers(
  references: readonly WorkerReference[],
  keys: Readonly<Record<string, KeyLocation>>,
  source: WorkerSource,
): Promise<LoadedWorkers> {
  const results = await Promise.allSettled(references.map((ref) => source(ref.name)));
  const issues: ConfigIssue[] = [];
  const workers = new Map<number, LoadedWorker>();
  for (const [i, result] of results.entries()) {
    const ref = references[i]!;
    const file = workerFile(ref.name);
    const atWorker = (message: string) =>
      issues.push({ ...ref.location, path: `workers[${ref.index}].worker`, message });
    if (result.status === "rejected") {
      if (!(result.reason instanceof WorkerLoadError)) throw result.reason;
      atWorker(result.reason.message);
      continue;
    }
    const definition = checkDefinition(file, result.value);
    if (Array.isArray(definition)) {
      for (const problem of definition) atWorker(problem);
      continue;
    }
    if (ref.options === null) continue;
    const problems = optionProblems(file, definition.options, ref.options);
    for (const { key, problem, at } of problems) {
      const path = `workers[${ref.index}].options.${key}`;
      const place = keys[path]?.[at] ?? ref.location;
      issues.push({ ...place, path, message: `${path} ${problem}` });
    }
    if (problems.length === 0) {
      workers.set(ref.index, loaded(ref.name, file, definition, ref.options));
    }
  }
  return { workers, issues };
}

function loaded(
  name: string,
  file: string,
  definition: WorkerDefinition,
  entryOptions: Readonly<WorkerOptions>,
): LoadedWorker {
  return Object.freeze({
    name,
    file,
    definition,
    options: Object.freeze({ ...definition.options, ...entryOptions }),
  });
}

/** `file:line:col` inside workers/ of the first place an import error names there. */
const PLACE = /(file:\/\/[^\s)]+):(\d+):(\d+)/g;
// Deno colours the place in some messages (Module not found).
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The import error's first line, after the place in the worker's code it
 * names (a syntax error's line and column), so the operator can go there;
 * for a module that does not exist, the one under `workersDir` it is
 * closest to, if any is close enough to be a typo.
 */
async function describeImportError(
  error: unknown,
  url: URL,
  name: string,
  workersDir: URL,
): Promise<string> {
  const message = errorText(error).replace(ANSI, "");
  const stack = error instanceof Error ? (error.stack ?? "").replace(ANSI, "") : "";
  const firstLine = message.split("\n", 1)[0] ?? "";
  if (firstLine.includes("Module not found") && firstLine.includes(url.href)) {
    const meant = closest(name, await workerNames(workersDir));
    return `${workerFile(name)}: no such worker module${
      meant === undefined ? "" : ` (did you mean ${meant}?)`
    }`;
  }
  for (const [, where, line, col] of `${message}\n${stack}`.matchAll(PLACE)) {
    if (where!.startsWith(workersDir.href)) {
      return `workers/${
        where!.slice(workersDir.href.length)
      }:${line}:${col}: cannot be loaded: ${firstLine}`;
    }
  }
  return `${workerFile(name)}: cannot be loaded: ${firstLine}`;
}

/** The definition, or every problem of its shape (each starting with `file`). */
function checkDefinition(file: string, value: unknown): WorkerDefinition | string[] {
  if (value === undefined) {
    return [`${file}: has no default export (export default defineWorker({...}))`];
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return [
      `${file}: default export must be an object made by defineWorker(), got ${describe(value)}`,
    ];
  }
  const problems: string[] = [];
  const definition = value as Record<string, unknown>;
  for (const key of Object.keys(definition)) {
    if (!DEFINITION_KEYS.has(key)) {
      problems.push(
        `${file}: default export has an unknown key ${JSON.stringify(key)} (known: ${
          [...DEFINITION_KEYS].join(", ")
        })`,
      );
    }
  }
  problems.push(...handlerProblems(file, definition));
  for (const key of FUNCTION_KEYS) {
    const hook = definition[key];
    if (hook !== undefined && typeof hook !== "function") {
      problems.push(`${file}: ${key} must be a function, got ${describe(hook)}`);
    }
  }
  const decode = definition.decode;
  if (decode !== undefined && typeof decode !== "function" && !DECODERS.has(decode as string)) {
    problems.push(
      `${file}: decode must be "json", "text", "bytes" or a function, got ${describe(decode)}`,
    );
  }
  problems.push(...schemaProblems(file, definition));
  const options = definition.options;
  if (options !== undefined && !isPlainObject(options)) {
    problems.push(`${file}: options must be an object, got ${describe(options)}`);
  }
  return problems.length > 0 ? problems : definition as unknown as WorkerDefinition;
}

/**
 * A `schema` must be a Standard Schema v1 (an object or function with a
 * `~standard` carrying `version: 1` and `validate`), and replaces
 * `validate`: with both, which one decides would be a guess.
 */
function schemaProblems(file: string, definition: Record<string, unknown>): string[] {
  const schema = definition.schema;
  if (schema === undefined) return [];
  const problems: string[] = [];
  if (definition.validate !== undefined) {
    problems.push(`${file}: has both schema and validate; give one of them`);
  }
  const props = (typeof schema === "object" || typeof schema === "function") && schema !== null
    ? (schema as { "~standard"?: unknown })["~standard"]
    : undefined;
  const standard = typeof props === "object" && props !== null
    ? props as { version?: unknown; validate?: unknown }
    : null;
  if (standard === null || standard.version !== 1 || typeof standard.validate !== "function") {
    problems.push(
      `${file}: schema must be a Standard Schema v1 (zod, valibot, arktype…: a "~standard" ` +
        `with version 1 and validate()), got ${
          standard === null
            ? (typeof schema === "object" || typeof schema === "function") && schema !== null
              ? `${describe(schema)} without "~standard"`
              : describe(schema)
            : `a "~standard" with version ${describe(standard.version)} and validate ${
              describe(standard.validate)
            }`
        }`,
    );
  }
  return problems;
}

/** A worker has exactly one handler, `handle` or `handleBatch`, and `batch` only with the latter. */
function handlerProblems(file: string, definition: Record<string, unknown>): string[] {
  const { handle, handleBatch, batch } = definition;
  const problems: string[] = [];
  if (handle !== undefined && handleBatch !== undefined) {
    problems.push(`${file}: default export has both handle() and handleBatch(); keep one`);
  } else if (handle === undefined && handleBatch === undefined) {
    problems.push(`${file}: default export has no handle() or handleBatch() function`);
  }
  for (const [key, value] of [["handle", handle], ["handleBatch", handleBatch]] as const) {
    if (value !== undefined && typeof value !== "function") {
      problems.push(`${file}: ${key} must be a function, got ${describe(value)}`);
    }
  }
  if (batch === undefined) return problems;
  if (handleBatch === undefined) {
    problems.push(`${file}: batch is only for a worker with handleBatch()`);
  }
  if (!isPlainObject(batch)) {
    problems.push(`${file}: batch must be an object { size, wait }, got ${describe(batch)}`);
    return problems;
  }
  for (const key of Object.keys(batch)) {
    if (key !== "size" && key !== "wait") {
      problems.push(`${file}: batch has an unknown key ${JSON.stringify(key)} (known: size, wait)`);
    }
  }
  const { size, wait } = batch;
  if (size !== undefined && !(Number.isInteger(size) && (size as number) >= 1)) {
    problems.push(`${file}: batch.size must be a positive integer, got ${describe(size)}`);
  }
  if (wait !== undefined && !(typeof wait === "number" && wait >= 0 && wait <= 3_600_000)) {
    problems.push(
      `${file}: batch.wait must be milliseconds from 0 to 3600000, got ${describe(wait)}`,
    );
  }
  return problems;
}

/** A problem with one entry option, and whether it lies in its key or its value. */
interface OptionProblem {
  readonly key: string;
  /** What follows `options.<key>` in the message. */
  readonly problem: string;
  readonly at: "key" | "value";
}

/**
 * A worker that declares `options` names every option it reads, so an entry
 * option it does not declare is a typo, and one of another type a mistake.
 * Every such option is reported.
 */
function optionProblems(
  file: string,
  defaults: WorkerOptions | undefined,
  entryOptions: Readonly<WorkerOptions>,
): OptionProblem[] {
  if (defaults === undefined) return [];
  const problems: OptionProblem[] = [];
  for (const [key, value] of Object.entries(entryOptions)) {
    if (!Object.hasOwn(defaults, key)) {
      problems.push({
        key,
        at: "key",
        problem: `is not an option of ${file} (its options: ${
          Object.keys(defaults).join(", ") || "none"
        })`,
      });
      continue;
    }
    const fallback = defaults[key];
    if (fallback !== null && value !== null && kind(fallback) !== kind(value)) {
      problems.push({
        key,
        at: "value",
        problem: `must be ${kind(fallback)} like the default of ${file} (${
          JSON.stringify(fallback)
        }), got ${describe(value)}`,
      });
    }
  }
  return problems;
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
