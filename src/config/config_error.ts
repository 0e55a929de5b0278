/**
 * The error every config problem is reported with: one `ConfigError` carrying
 * all the issues found in a file, so an operator fixes them in one pass.
 *
 * @module
 */

/** One problem in a config file. */
export interface ConfigIssue {
  /** The config file, as given. */
  readonly file: string;
  /** 1-based line of the offending node, or null when it has no place in the file. */
  readonly line: number | null;
  /** 1-based column, or null together with `line`. */
  readonly col: number | null;
  /** Key path such as `workers[0].max_in_flight`; empty for the whole document. */
  readonly path: string;
  /**
   * What was expected and what was found, without the location, e.g.
   * `workers[0].max_in_flight must be an integer from 1 to 2500, got "ten"`.
   */
  readonly message: string;
}

/**
 * Formats an issue as `file:line:col: message`, or `file: message` when the
 * line is unknown.
 *
 * @example
 * ```ts
 * formatIssue({ file: "config.yaml", line: 14, col: 5, path: "x", message: "x is wrong" });
 * // "config.yaml:14:5: x is wrong"
 * ```
 */
export function formatIssue(issue: ConfigIssue): string {
  if (issue.line === null) return `${issue.file}: ${issue.message}`;
  const col = issue.col === null ? "" : `:${issue.col}`;
  return `${issue.file}:${issue.line}${col}: ${issue.message}`;
}

/**
 * A configuration that cannot be used. The message lists every issue, one per
 * line, so it can be printed as is (no stack trace needed).
 *
 * @example
 * ```ts
 * try {
 *   await loadConfig("config.yaml");
 * } catch (e) {
 *   if (e instanceof ConfigError) console.error(e.message);
 * }
 * ```
 */
export class ConfigError extends Error {
  /** Every issue, in document order. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i })));
  }
}
