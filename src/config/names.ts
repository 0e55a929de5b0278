/**
 * The names config.yaml refers to: NSQ topics and channels, and worker
 * modules under `workers/`.
 *
 * @module
 */

/** NSQ's own limit on topic and channel names. */
export const MAX_NAME_LENGTH = 64;

/** A topic or channel name, without its length limit. */
export const NSQ_NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;
const NAME_CHARS = /^[.a-zA-Z0-9_-]*$/;

/** What a topic or channel name may look like, for error messages. */
export const NSQ_NAME_RULE =
  `1 to ${MAX_NAME_LENGTH} characters of a-z A-Z 0-9 . _ -, optionally ending in #ephemeral`;

/**
 * Whether `name` is a valid NSQ topic or channel name (the rule nsqd applies).
 *
 * @example
 * ```ts
 * isNsqName("pageviews#ephemeral"); // true
 * isNsqName("page views"); // false
 * ```
 */
export function isNsqName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NSQ_NAME.test(name);
}

/**
 * Whether `text` only uses characters allowed in a topic name (and may be
 * empty), as `topic_prefix` must.
 */
export function hasNameCharsOnly(text: string): boolean {
  return NAME_CHARS.test(text);
}

/**
 * Path segments of lower-case letters, digits, `_` and `-`, joined by `/`:
 * never `..`, a URL or absolute; lower case, so that a name means the same
 * module on case-insensitive file systems.
 */
export const WORKER_NAME = /^[a-z0-9_][a-z0-9_-]*(\/[a-z0-9_][a-z0-9_-]*)*$/;
const MODULE_SUFFIX = /\.(ts|mts|js|mjs|tsx|jsx)$/;
const ABSOLUTE = /^([/\\]|[a-zA-Z]:[/\\])/;
const URL_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

/**
 * Checks a `worker:` value, which names a module under `workers/` without
 * its extension. Returns null when valid, otherwise what is wrong, worded to
 * follow the key path (e.g. `must not contain ..`).
 *
 * @example
 * ```ts
 * workerNameProblem("demo/pageview"); // null
 * workerNameProblem("demo/pageview.ts"); // "must name the module without its extension: ..."
 * ```
 */
export function workerNameProblem(name: string): string | null {
  if (WORKER_NAME.test(name)) return null;
  const got = JSON.stringify(name);
  if (ABSOLUTE.test(name)) {
    return `must be a path under workers/, not an absolute path, got ${got}`;
  }
  if (URL_SCHEME.test(name)) {
    return `must name a module under workers/, not a URL, got ${got}`;
  }
  if (name.split(/[/\\]/).includes("..")) {
    return `must stay inside workers/ (no ..), got ${got}`;
  }
  if (name.includes("\\")) {
    return `must use / between folders, got ${got}`;
  }
  if (MODULE_SUFFIX.test(name)) {
    const bare = name.replace(MODULE_SUFFIX, "");
    if (WORKER_NAME.test(bare)) {
      return `must name the module without its extension: write ${bare}, not ${name}`;
    }
  }
  return `must name a module under workers/ like demo/pageview (lower-case letters, digits, _ and -, ` +
    `with / between folders), got ${got}`;
}
