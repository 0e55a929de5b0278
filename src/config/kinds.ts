/**
 * Kinds of config values: each reads a node, reports what is wrong with it
 * (`<path> must be <expected>, got <found>`) and returns the typed value.
 * Options are declared with these in `schema.ts`.
 *
 * @module
 */

import { DURATION_PATTERN, formatDuration, parseDuration } from "./duration.ts";
import { type At, type Found, INVALID, type Invalid } from "./reader.ts";

/** Reads one value; returns INVALID after reporting why it does not fit. */
export type Kind<T> = (at: At) => T | Invalid;

/** The type a kind produces. */
export type KindValue<K> = K extends Kind<infer T> ? T : never;

/** A JSON Schema (2020-12) object. */
export type JsonSchema = { readonly [key: string]: unknown };

/** How a kind that holds other kinds finds their schemas. */
export type SchemaOf = (kind: Kind<unknown>) => JsonSchema;

/**
 * What a kind accepts, as JSON Schema, and how a typed value (a default)
 * is written in YAML; `nsqworker schema` reads these.
 */
export interface KindDescription {
  readonly schema: (schemaOf: SchemaOf) => JsonSchema;
  readonly asWritten?: (value: never) => unknown;
}

const DESCRIPTIONS = new WeakMap<Kind<unknown>, KindDescription>();

/** Attaches a {@linkcode KindDescription} to `kind` and returns it. */
export function describedAs<K extends Kind<unknown>>(
  kind: K,
  schema: JsonSchema | ((schemaOf: SchemaOf) => JsonSchema),
  asWritten?: (value: KindValue<K>) => unknown,
): K {
  DESCRIPTIONS.set(kind, {
    schema: typeof schema === "function" ? schema : () => schema,
    ...(asWritten ? { asWritten: asWritten as (value: never) => unknown } : {}),
  });
  return kind;
}

/** Adds how a typed value of `kind` is written in YAML, keeping its schema. */
export function writtenAs<K extends Kind<unknown>>(
  kind: K,
  asWritten: (value: KindValue<K>) => unknown,
): K {
  const described = DESCRIPTIONS.get(kind);
  return describedAs(kind, described?.schema ?? (() => ({})), asWritten);
}

/** The description attached to `kind`, if any. */
export function descriptionOf(kind: Kind<unknown>): KindDescription | undefined {
  return DESCRIPTIONS.get(kind);
}

/**
 * A `${VAR}` or `${VAR:-default}` somewhere in a string: any scalar may be
 * one (see `env.ts`), and only the expanded value is checked.
 */
export const ENV_REFERENCE_SCHEMA: JsonSchema = {
  type: "string",
  pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}",
  description: "an environment reference, ${VAR} or ${VAR:-default}, expanded when loaded",
};

/** {@linkcode ENV_REFERENCE_SCHEMA} as the schema refers to it. */
export const ENV_REFERENCE: JsonSchema = { $ref: "#/$defs/env_reference" };

/** A scalar's schema, or an environment reference in its place. */
function scalarSchema(schema: JsonSchema): JsonSchema {
  return { anyOf: [schema, ENV_REFERENCE] };
}

/**
 * Reads a scalar and hands it to `check`, which returns the value, INVALID
 * after reporting a problem of its own, or undefined for the usual
 * `must be <expected>, got <found>` (also what collections get).
 */
function scalar<T>(
  expected: string,
  schema: JsonSchema,
  check: (found: Found & { shape: "scalar" }, at: At) => T | Invalid | undefined,
): Kind<T> {
  return describedAs<Kind<T>>((at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape !== "scalar") return at.mustBe(expected, found);
    const value = check(found, at);
    return value === undefined ? at.mustBe(expected, found) : value;
  }, scalarSchema({ description: expected, ...schema }));
}

/** An integer within bounds. */
export function integer(min: number, max: number): Kind<number> {
  return scalar(
    `an integer from ${min} to ${max}`,
    { type: "integer", minimum: min, maximum: max },
    ({ value }) =>
      typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
        ? value
        : undefined,
  );
}

/**
 * A duration (see `duration.ts`) in milliseconds, within bounds written as
 * durations, which messages show as declared, or in milliseconds.
 */
export function duration(minBound: string | number, maxBound: string | number): Kind<number> {
  const minMs = parseDuration(minBound);
  const maxMs = parseDuration(maxBound);
  if (minMs === null || maxMs === null) {
    throw new TypeError(`bad bounds ${minBound}..${maxBound}`);
  }
  const min = boundText(minBound);
  const max = boundText(maxBound);
  const kind = scalar(
    "a duration like 250ms, 5s, 15m or 24h",
    {
      description: `a duration from ${min} to ${max}: 250ms, 5s, 15m, 24h, 7d, 1h30m, ` +
        `or an integer of milliseconds`,
      anyOf: [
        { type: "integer", minimum: minMs, maximum: maxMs },
        { type: "string", pattern: DURATION_PATTERN },
      ],
    },
    (found, at) => {
      const ms = parseDuration(found.value);
      if (ms === null) return undefined;
      if (ms >= minMs && ms <= maxMs) return ms;
      return at.mustBe(`a duration from ${min} to ${max}`, found);
    },
  );
  return writtenAs(kind, formatDuration);
}

/** A bound as declared, or milliseconds as a person writes them (zero as `0ms`, like the others). */
function boundText(bound: string | number): string {
  if (typeof bound === "string") return bound;
  return bound === 0 ? "0ms" : formatDuration(bound);
}

/** One of a few words. */
export function oneOf<const T extends string>(...words: T[]): Kind<T> {
  return scalar(
    `one of ${words.join(", ")}`,
    { enum: words },
    ({ value }) => words.find((word) => word === value),
  );
}

/** `true` or `false`. */
export const boolean: Kind<boolean> = scalar(
  "true or false",
  { type: "boolean" },
  ({ value }) => typeof value === "boolean" ? value : undefined,
);

/**
 * The string a scalar stands for. A plain number is taken as written
 * (`topic: 2024` is "2024"), and so is anything that came from the
 * environment: re-typing only matters for options that are not strings.
 */
function asText(found: Found & { shape: "scalar" }): string | undefined {
  const { value, text, fromEnv } = found;
  if (typeof value === "string") return value;
  if (text !== null && value !== null && (typeof value === "number" || fromEnv)) return text;
  return undefined;
}

/** A string. */
export const text: Kind<string> = scalar("a string", { type: ["string", "number"] }, asText);

/** A string kind with a further check, as in {@linkcode scalar}. */
export function textWith<T>(
  expected: string,
  schema: JsonSchema,
  check: (value: string, at: At) => T | Invalid | undefined,
): Kind<T> {
  return scalar(expected, schema, (found, at) => {
    const value = asText(found);
    return value === undefined ? undefined : check(value, at);
  });
}

/** A string where empty means "not set" (null). */
export const optionalText: Kind<string | null> = nullable(
  describedAs((at) => {
    const value = text(at);
    return value === "" ? null : value;
  }, (of) => of(text)),
);

/** `kind`, or null. */
export function nullable<T>(kind: Kind<T>): Kind<T | null> {
  const asWritten = descriptionOf(kind)?.asWritten as ((value: T) => unknown) | undefined;
  return describedAs<Kind<T | null>>(
    (at) => {
      const found = at.found();
      if (found === INVALID) return INVALID;
      return found.shape === "scalar" && found.value === null ? null : kind(at);
    },
    (of) => ({ anyOf: [of(kind), { type: "null" }] }),
    (value) => value === null || asWritten === undefined ? value : asWritten(value),
  );
}

/** A list of `kind` (an empty value is an empty list). */
export function list<T>(kind: Kind<T>, expected: string): Kind<T[]> {
  return describedAs<Kind<T[]>>((at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape === "scalar" && found.value === null) return [];
    if (found.shape !== "list") return at.mustBe(expected, found);
    const values = found.items.map(kind);
    return values.some((v) => v === INVALID) ? INVALID : values as T[];
  }, (of) => ({ description: expected, type: ["array", "null"], items: of(kind) }));
}

/**
 * Any mapping, as plain data with `${...}` expanded throughout (an empty
 * value is an empty mapping).
 */
export const mapping: Kind<Record<string, unknown>> = describedAs((at) => {
  const found = at.found();
  if (found === INVALID) return INVALID;
  if (found.shape === "scalar" && found.value === null) return {};
  if (found.shape !== "mapping") return at.mustBe("a mapping", found);
  return plainMapping(found.entries, new Set([at.target()]));
}, { type: ["object", "null"] });

/**
 * `open` holds the collections being read around `at`: an alias to one of
 * them would make the value contain itself, and reading it would never end.
 */
function plain(at: At, open: Set<unknown>): unknown {
  const found = at.found();
  if (found === INVALID) return INVALID;
  if (found.shape === "scalar") return found.value;
  const node = at.target();
  if (open.has(node)) {
    return at.fail("refers to an anchor that contains it, so its value would contain itself");
  }
  open.add(node);
  try {
    if (found.shape === "mapping") return plainMapping(found.entries, open);
    const items = found.items.map((item) => plain(item, open));
    return items.some((v) => v === INVALID) ? INVALID : items;
  } finally {
    open.delete(node);
  }
}

function plainMapping(
  entries: readonly { key: string; at: At }[],
  open: Set<unknown>,
): Record<string, unknown> | Invalid {
  const out: Record<string, unknown> = {};
  let ok = true;
  for (const { key, at } of entries) {
    const value = plain(at, open);
    if (value === INVALID) ok = false;
    // defineProperty: a key named __proto__ is data here, not a prototype.
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return ok ? out : INVALID;
}
