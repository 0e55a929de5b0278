/**
 * Kinds of config values: each reads a node, reports what is wrong with it
 * (`<path> must be <expected>, got <found>`) and returns the typed value.
 * Options are declared with these in `schema.ts`.
 *
 * @module
 */

import { parseDuration } from "./duration.ts";
import { type At, type Found, INVALID, type Invalid } from "./reader.ts";

/** Reads one value; returns INVALID after reporting why it does not fit. */
export type Kind<T> = (at: At) => T | Invalid;

/** The type a kind produces. */
export type KindValue<K> = K extends Kind<infer T> ? T : never;

/**
 * Reads a scalar and hands it to `check`, which returns the value, INVALID
 * after reporting a problem of its own, or undefined for the usual
 * `must be <expected>, got <found>` (also what collections get).
 */
function scalar<T>(
  expected: string,
  check: (found: Found & { shape: "scalar" }, at: At) => T | Invalid | undefined,
): Kind<T> {
  return (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape !== "scalar") return at.mustBe(expected, found);
    const value = check(found, at);
    return value === undefined ? at.mustBe(expected, found) : value;
  };
}

/** An integer within bounds. */
export function integer(min: number, max: number): Kind<number> {
  return scalar(
    `an integer from ${min} to ${max}`,
    ({ value }) =>
      typeof value === "number" && Number.isInteger(value) && value >= min && value <= max
        ? value
        : undefined,
  );
}

/**
 * A duration (see `duration.ts`) in milliseconds, within bounds written as
 * durations so that messages show them as declared.
 */
export function duration(min: string, max: string): Kind<number> {
  const minMs = parseDuration(min);
  const maxMs = parseDuration(max);
  if (minMs === null || maxMs === null) throw new TypeError(`bad bounds ${min}..${max}`);
  return scalar("a duration like 250ms, 5s, 15m or 24h", (found, at) => {
    const ms = parseDuration(found.value);
    if (ms === null) return undefined;
    if (ms >= minMs && ms <= maxMs) return ms;
    return at.mustBe(`a duration from ${min} to ${max}`, found);
  });
}

/** One of a few words. */
export function oneOf<const T extends string>(...words: T[]): Kind<T> {
  return scalar(
    `one of ${words.join(", ")}`,
    ({ value }) => words.find((word) => word === value),
  );
}

/** `true` or `false`. */
export const boolean: Kind<boolean> = scalar(
  "true or false",
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
export const text: Kind<string> = scalar("a string", asText);

/** A string kind with a further check, as in {@linkcode scalar}. */
export function textWith<T>(
  expected: string,
  check: (value: string, at: At) => T | Invalid | undefined,
): Kind<T> {
  return scalar(expected, (found, at) => {
    const value = asText(found);
    return value === undefined ? undefined : check(value, at);
  });
}

/** A string where empty means "not set" (null). */
export const optionalText: Kind<string | null> = nullable((at) => {
  const value = text(at);
  return value === "" ? null : value;
});

/** `kind`, or null. */
export function nullable<T>(kind: Kind<T>): Kind<T | null> {
  return (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    return found.shape === "scalar" && found.value === null ? null : kind(at);
  };
}

/** A list of `kind` (an empty value is an empty list). */
export function list<T>(kind: Kind<T>, expected: string): Kind<T[]> {
  return (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape === "scalar" && found.value === null) return [];
    if (found.shape !== "list") return at.mustBe(expected, found);
    const values = found.items.map(kind);
    return values.some((v) => v === INVALID) ? INVALID : values as T[];
  };
}

/**
 * Any mapping, as plain data with `${...}` expanded throughout (an empty
 * value is an empty mapping).
 */
export const mapping: Kind<Record<string, unknown>> = (at) => {
  const found = at.found();
  if (found === INVALID) return INVALID;
  if (found.shape === "scalar" && found.value === null) return {};
  if (found.shape !== "mapping") return at.mustBe("a mapping", found);
  return plainMapping(found.entries, new Set([at.target()]));
};

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
