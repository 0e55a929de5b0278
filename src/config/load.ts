/**
 * Reading config.yaml into a validated, deeply frozen {@linkcode Config}.
 *
 * @module
 */

import { LineCounter, parseDocument } from "yaml";
import { ConfigError, type ConfigIssue } from "./config_error.ts";
import { deepFreeze } from "./deep_freeze.ts";
import { type ReadEntries, readEntries } from "./entries.ts";
import { At, describe, INVALID, type Invalid, type KeyLocation, Reader } from "./reader.ts";
import { CONFIG_FIELDS } from "./schema.ts";
import { complete, readSection } from "./section.ts";
import type { Config, NsqConfig, WorkerReference } from "./types.ts";
import { errorText } from "../error_text.ts";

const EXPECTED = "expected a mapping with a 'workers' list";

/**
 * A config file as read: the config when it has no problem, and in any case
 * what could be read of it, so that the checks made after parsing (worker
 * modules, TLS files) report in the same pass as the problems of the text.
 */
export interface ConfigDraft {
  /** The path the config was read from, as given. */
  readonly file: string;
  /** The validated, frozen config; null when `issues` is not empty. */
  readonly config: Config | null;
  /** Every problem found in the text, in document order. */
  readonly issues: readonly ConfigIssue[];
  /** The `nsq:` section when it could be read, even if other sections could not. */
  readonly nsq: NsqConfig | null;
  /** Every entry's `worker:` that could be read. */
  readonly workers: readonly WorkerReference[];
  /** Where each key is written, by key path (`nsq.tls.ca_file`, `workers[0].options.label`). */
  readonly keys: Readonly<Record<string, KeyLocation>>;
}

/**
 * Reads config text without throwing. Pure: `${VAR}` references are expanded
 * from `env`, and nothing is read or connected.
 *
 * Note that the `yaml` package reads the LOG_TOKENS and LOG_STREAM environment
 * variables while parsing, so Deno needs at least
 * `--allow-env=LOG_TOKENS,LOG_STREAM`.
 *
 * @example
 * ```ts
 * const draft = draftConfig(text, "config.yaml", {});
 * if (draft.config === null) console.error(draft.issues);
 * ```
 */
export function draftConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
): ConfigDraft {
  const lineCounter = new LineCounter();
  // Duplicate keys are found while reading, where their key path is known.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const reader = new Reader(file, text, env, lineCounter, doc);
  for (const problem of [...doc.errors, ...doc.warnings]) {
    reader.report(problem.pos[0], "", `invalid YAML: ${problem.message}`);
  }
  const read = doc.errors.length > 0 ? UNREADABLE : readConfig(reader);
  const issues = reader.issues();
  const config = read.config === INVALID || issues.length > 0 ? null : deepFreeze(read.config);
  return {
    file,
    config,
    issues,
    nsq: read.nsq === INVALID ? null : read.nsq,
    workers: read.workers,
    keys: reader.keyLocations(),
  };
}

/** The draft's config, or a ConfigError with its issues. */
function configOf(draft: ConfigDraft): Config {
  if (draft.config === null) throw new ConfigError(draft.issues);
  return draft.config;
}

interface ReadConfig {
  readonly config: Config | Invalid;
  readonly nsq: NsqConfig | Invalid;
  readonly workers: WorkerReference[];
}

const UNREADABLE: ReadConfig = { config: INVALID, nsq: INVALID, workers: [] };

function readConfig(reader: Reader): ReadConfig {
  const contents = reader.doc.contents;
  if (contents === null) {
    reader.report(null, "", `${EXPECTED}, got an empty document`);
    return UNREADABLE;
  }
  const root = new At(reader, contents, "", contents.range?.[0] ?? 0);
  const found = root.found();
  if (found === INVALID) return UNREADABLE;
  if (found.shape !== "mapping") {
    root.report(`${EXPECTED}, got ${describe(found)}`);
    return UNREADABLE;
  }
  const top = readSection(root, CONFIG_FIELDS);
  if (top === INVALID) return UNREADABLE;
  const { workers: items, defaults, nsq, ...rest } = top.values;
  const { entries: workers, references }: ReadEntries = items === INVALID
    ? { entries: INVALID, references: [] }
    : readEntries(items, defaults, nsq === INVALID ? INVALID : nsq.topicPrefix);
  const settings = defaults === INVALID ? INVALID : complete(defaults.values);
  const sections = complete(rest);
  const config = workers === INVALID || settings === INVALID || nsq === INVALID ||
      sections === INVALID
    ? INVALID
    : { file: reader.file, nsq, defaults: settings, ...sections, workers };
  return { config, nsq, workers: references };
}

/**
 * Reads and parses a config file (see {@linkcode draftConfig}) and throws a
 * `ConfigError` listing every issue, in document order; a file that cannot
 * be read is a `ConfigError` too.
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
  return configOf(await readConfigDraft(file, env));
}

/**
 * Reads a config file into a {@linkcode ConfigDraft}; a file that cannot be
 * read is a draft with that one issue.
 */
export async function readConfigDraft(
  file: string,
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): Promise<ConfigDraft> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    return {
      file,
      config: null,
      issues: [{
        file,
        line: null,
        col: null,
        path: "",
        message: `cannot read file: ${readFailure(error)}`,
      }],
      nsq: null,
      workers: [],
      keys: {},
    };
  }
  return draftConfig(text, file, env);
}

/** The OS's reason without Deno's decoration (`(os error 2): readfile 'x'`). */
export function readFailure(error: unknown): string {
  const message = errorText(error);
  return message.replace(/ \(os error \d+\)/, "").replace(/: [a-z]+ '.*'$/, "");
}
