/**
 * Standard Schema (standardschema.dev, version 1): the one `~standard`
 * interface that zod, valibot, arktype and others implement. The types are
 * declared here, so that the daemon depends on no schema library: checking a
 * body is one call to `~standard.validate`.
 *
 * @module
 */

import { describeError, MAX_ERROR_LENGTH } from "../error_text.ts";
import { isPromiseLike } from "../is_promise_like.ts";

/** A schema that implements Standard Schema v1, with its input and output types. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": StandardSchemaProps<Input, Output>;
}

/** The `~standard` property of a {@linkcode StandardSchemaV1}. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1;
  /** The library, e.g. `"zod"`. */
  readonly vendor: string;
  /** Checks `value`; resolves to the output value, or to the issues found. */
  readonly validate: (
    value: unknown,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** Carries the types only; never read at run time. */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

/** What `~standard.validate` gives: the output value, or the issues. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] };

/** One problem a schema found in a value. */
export interface StandardSchemaIssue {
  readonly message: string;
  /** Where in the value: property keys and indexes, bare or as `{ key }`. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The output type of a {@linkcode StandardSchemaV1}: the handler's `body`. */
export type InferSchemaOutput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["output"];

/** A body checked by a schema: its output value, or why it failed (the dead letter's `error`). */
export type SchemaCheck =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: string };

/** Issues beyond this many are counted, not listed: the first ones say what went wrong. */
export const MAX_LISTED_ISSUES = 10;

/**
 * Checks `body` with `schema`: synchronously when its `validate` returns a
 * result, as a promise when it returns one. Never throws nor rejects: a
 * `validate` that throws, or a result of the wrong shape, is a failure.
 *
 * @example
 * ```ts
 * import { checkWithSchema } from "./standard_schema.ts";
 *
 * const clicks = {
 *   "~standard": {
 *     version: 1 as const,
 *     vendor: "example",
 *     validate: (value: unknown) =>
 *       typeof value === "number" ? { value } : { issues: [{ message: "expected number" }] },
 *   },
 * };
 * checkWithSchema(clicks, "3"); // { ok: false, error: "expected number" }
 * ```
 */
export function checkWithSchema(
  schema: StandardSchemaV1,
  body: unknown,
): SchemaCheck | Promise<SchemaCheck> {
  let result: unknown;
  try {
    result = schema["~standard"].validate(body);
  } catch (error) {
    return { ok: false, error: `schema threw: ${describeError(error)}` };
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      readResult,
      (error) => ({ ok: false, error: `schema threw: ${describeError(error)}` }),
    );
  }
  return readResult(result);
}

function readResult(result: unknown): SchemaCheck {
  if (typeof result !== "object" || result === null) {
    return { ok: false, error: `schema returned ${describeError(result)}, not a result` };
  }
  const { issues } = result as { issues?: unknown };
  if (issues === undefined) return { ok: true, value: (result as { value?: unknown }).value };
  if (!Array.isArray(issues)) {
    return {
      ok: false,
      error: `schema returned issues that are not a list: ${describeError(issues)}`,
    };
  }
  return { ok: false, error: describeIssues(issues) };
}

/**
 * The issues as one line, each at its path: `clicks: expected number, got
 * string; tags[1]: expected string`. The first {@linkcode MAX_LISTED_ISSUES}
 * are listed, the rest counted; each is cut so that one long message does
 * not hide the others, and the whole fits an outcome's `error`.
 */
export function describeIssues(issues: readonly unknown[]): string {
  if (issues.length === 0) return "schema failed without issues";
  const listed = issues.slice(0, MAX_LISTED_ISSUES).map(describeIssue);
  const rest = issues.length - listed.length;
  const more = rest > 0 ? `; and ${rest} more issue${rest === 1 ? "" : "s"}` : "";
  const share = Math.floor((MAX_ERROR_LENGTH - more.length) / listed.length) - 2;
  return listed.map((text) => cut(text, share)).join("; ") + more;
}

function describeIssue(issue: unknown): string {
  if (typeof issue !== "object" || issue === null) return describeError(issue);
  const { message, path } = issue as { message?: unknown; path?: unknown };
  const text = typeof message === "string" ? message : describeError(message);
  const where = Array.isArray(path) ? formatPath(path) : "";
  return where === "" ? text : `${where}: ${text}`;
}

/** `a.b[0]["c d"]`: a dotted path where keys are identifiers, brackets elsewhere. */
function formatPath(path: readonly unknown[]): string {
  let text = "";
  for (const segment of path) {
    const key = typeof segment === "object" && segment !== null && "key" in segment
      ? (segment as { key: unknown }).key
      : segment;
    if (typeof key === "number") text += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)) {
      text += text === "" ? key : `.${key}`;
    } else text += `[${typeof key === "string" ? JSON.stringify(key) : String(key)}]`;
  }
  return text;
}

function cut(text: string, length: number): string {
  return text.length <= length ? text : text.slice(0, Math.max(1, length - 1)) + "…";
}
