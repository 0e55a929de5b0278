/**
 * `${VAR}` and `${VAR:-default}` expansion in config string values.
 *
 * @module
 */

/** The result of expanding one string. */
export type Expansion =
  | {
    readonly ok: true;
    readonly text: string;
    /** Whether any `${...}` was replaced (a plain scalar is then re-typed). */
    readonly expanded: boolean;
  }
  | { readonly ok: false; readonly problems: readonly string[] };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * Expands `${VAR}` and `${VAR:-default}` from `env`; `$$` is a literal `$`,
 * and a `$` before anything else is kept as is. As in the shell, `:-` also
 * applies when the variable is set but empty. Problems are worded to follow
 * a key path, and never contain a variable's value.
 *
 * @example
 * ```ts
 * expandEnv("${HOST:-localhost}:4150", {}); // { ok: true, text: "localhost:4150", expanded: true }
 * expandEnv("${TOKEN}", {}).ok; // false: TOKEN is not set
 * ```
 */
export function expandEnv(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): Expansion {
  const problems: string[] = [];
  let out = "";
  let expanded = false;
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf("$", i);
    if (dollar === -1) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === "$") {
      out += "$";
      i = dollar + 2;
      continue;
    }
    if (next !== "{") {
      out += "$";
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf("}", dollar + 2);
    const match = close === -1 ? null : REFERENCE.exec(text.slice(dollar + 2, close));
    if (match === null || match[1] === undefined) {
      const shown = close === -1 ? text.slice(dollar) : text.slice(dollar, close + 1);
      problems.push(
        `invalid environment reference ${
          JSON.stringify(shown)
        }: write \${NAME} or \${NAME:-default}, and $$ for a literal $`,
      );
      if (close === -1) break;
      i = close + 1;
      continue;
    }
    const [, name, fallback] = match;
    const value = env[name];
    if (value !== undefined && (value !== "" || fallback === undefined)) {
      out += value;
    } else if (fallback !== undefined) {
      out += fallback;
    } else {
      problems.push(
        `environment variable ${name} is not set (use \${${name}:-} for an optional value)`,
      );
    }
    expanded = true;
    i = close + 1;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, text: out, expanded };
}
