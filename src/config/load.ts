/**
 * Reading config.yaml into a validated, deeply frozen {@linkcode Config}.
 *
 * @module
 */

import { LineCounter, parseDocument } from "yaml";
import { ConfigError } from "./config_error.ts";
import { deepFreeze } from "./deep_freeze.ts";
import { readEntries } from "./entries.ts";
import { At, describe, INVALID, type Invalid, Reader } from "./reader.ts";
import { CONFIG_FIELDS } from "./schema.ts";
import { complete, readSection } from "./section.ts";
import type { Config } from "./types.ts";

const EXPECTED = "expected a mapping with a 'workers' list";

/**
 * Parses and validates config text. Pure: `${VAR}` references are expanded
 * from `env`, and nothing is read or connected. Every problem in the text is
 * collected before throwing.
 *
 * Note that the `yaml` package reads the LOG_TOKENS and LOG_STREAM environment
 * variables while parsing, so Deno needs at least
 * `--allow-env=LOG_TOKENS,LOG_STREAM`.
 *
 * @throws {ConfigError} listing every issue, in document order.
 *
 * @example
 * ```ts
 * const config = parseConfig(text, "config.yaml", { NSQWORKER_TOKEN: "s3cret" });
 * config.workers[0]?.maxInFlight; // 10
 * ```
 */
export function parseConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const lineCounter = new LineCounter();
  // Duplicate keys are found while reading, where their key path is known.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const reader = new Reader(file, text, env, lineCounter, doc);
  for (const problem of [...doc.errors, ...doc.warnings]) {
    reader.report(problem.pos[0], "", `invalid YAML: ${problem.message}`);
  }
  const config = doc.errors.length > 0 ? INVALID : readConfig(reader);
  const issues = reader.issues();
  if (config === INVALID || issues.length > 0) throw new ConfigError(issues);
  return deepFreeze(config);
}

function readConfig(reader: Reader): Config | Invalid {
  const contents = reader.doc.contents;
  if (contents === null) {
    reader.report(null, "", `${EXPECTED}, got an empty document`);
    return INVALID;
  }
  const root = new At(reader, contents, "", contents.range?.[0] ?? 0);
  const found = root.found();
  if (found === INVALID) return INVALID;
  if (found.shape !== "mapping") return root.report(`${EXPECTED}, got ${describe(found)}`);
  const top = readSection(root, CONFIG_FIELDS);
  if (top === INVALID) return INVALID;
  const { workers: items, defaults, nsq, ...rest } = top.values;
  const workers = items === INVALID
    ? INVALID
    : readEntries(items, defaults, nsq === INVALID ? INVALID : nsq.topicPrefix);
  const settings = defaults === INVALID ? INVALID : complete(defaults.values);
  const sections = complete(rest);
  if (workers === INVALID || settings === INVALID || nsq === INVALID || sections === INVALID) {
    return INVALID;
  }
  return { file: reader.file, nsq, defaults: settings, ...sections, workers };
}

/**
 * Reads and parses a config file; see {@linkcode parseConfig}. A file that
 * cannot be read is a `ConfigError` too.
 *
 * @param env where `${VAR}` references are looked up; defaults to the
 *   process environment.
 *
 * @example
 * ```ts
 * const config = await loadConfig("config.yaml");
 * ```
 */
export async function loadConfig(
  file: string,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ConfigError([{
      file,
      line: null,
      col: null,
      path: "",
      message: `cannot read file: ${readFailure(error)}`,
    }]);
  }
  return parseConfig(text, file, env);
}

/** The OS's reason without Deno's decoration (`(os error 2): readfile 'x'`). */
function readFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\)/, "").replace(/: [a-z]+ '.*'$/, "");
}
