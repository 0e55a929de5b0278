/**
 * Mappings read against a declaration of their keys: each key is declared
 * once with its kind and default, which serves both for validation and for
 * filling in what is absent. Unknown keys are reported, with a suggestion.
 *
 * @module
 */

import type { Kind, KindValue } from "./kinds.ts";
import { At, INVALID, type Invalid } from "./reader.ts";
import { closest } from "./suggest.ts";

/** Marks a key that has no default: leaving it out is an error. */
export const REQUIRED: unique symbol = Symbol("required");
/**
 * Marks a key whose absence means the same as an empty value, e.g. a
 * section whose own keys all have defaults.
 */
export const AS_EMPTY: unique symbol = Symbol("as empty");

/** One key of a mapping: its property name in the typed config, kind and default. */
export interface Field<P extends string, K extends Kind<unknown>> {
  readonly prop: P;
  readonly kind: K;
  readonly fallback: KindValue<K> | typeof REQUIRED | typeof AS_EMPTY;
  /** The value is a secret: messages never show it. */
  readonly secret: boolean;
  /** What the key is for, shown by editors through `nsqworker schema`. */
  readonly description: string;
}

/**
 * Declares a key.
 *
 * @example
 * ```ts
 * const fields = {
 *   max_in_flight: field("maxInFlight", integer(1, 2500), 50, "messages handled at once"),
 * };
 * ```
 */
export function field<P extends string, K extends Kind<unknown>>(
  prop: P,
  kind: K,
  fallback: KindValue<K> | typeof REQUIRED | typeof AS_EMPTY,
  description: string,
  options: { secret?: boolean } = {},
): Field<P, K> {
  return { prop, kind, fallback, secret: options.secret ?? false, description };
}

/** The keys of a mapping, by their YAML name. */
export type Fields = Readonly<Record<string, Field<string, Kind<unknown>>>>;

/** Values as read: those that could not be read are INVALID. */
export type ReadValues<S extends Fields> = {
  -readonly [K in keyof S as S[K]["prop"]]: KindValue<S[K]["kind"]> | Invalid;
};

/** A mapping read against its fields. */
export interface Section<S extends Fields> {
  readonly values: ReadValues<S>;
  /** Where each key that is present was written, by YAML name. */
  readonly present: ReadonlyMap<string, At>;
  /** The mapping itself. */
  readonly at: At;
}

/**
 * Reads a mapping (an empty value counts as an empty mapping). Absent keys
 * take `fallbacks[prop]` when given (e.g. an entry inheriting `defaults:`),
 * otherwise their declared default.
 */
export function readSection<S extends Fields>(
  at: At,
  fields: S,
  fallbacks: Partial<ReadValues<S>> = {},
): Section<S> | Invalid {
  const found = at.found();
  if (found === INVALID) return INVALID;
  if (found.shape === "scalar" && found.value === null) {
    return finish(at, fields, new Map(), fallbacks);
  }
  if (found.shape !== "mapping") return at.mustBe("a mapping", found);
  const known = Object.keys(fields);
  const present = new Map<string, At>();
  for (const { key, at: value } of found.entries) {
    if (Object.hasOwn(fields, key)) {
      present.set(key, value);
      continue;
    }
    const guess = closest(key, known);
    const hint = guess === undefined ? `known keys: ${known.join(", ")}` : `did you mean ${guess}?`;
    at.reader.report(keyOffset(value), value.path, `${value.path} is not a known key (${hint})`);
  }
  return finish(at, fields, present, fallbacks);
}

function finish<S extends Fields>(
  at: At,
  fields: S,
  present: Map<string, At>,
  fallbacks: Partial<ReadValues<S>>,
): Section<S> {
  const values: Record<string, unknown> = {};
  for (const [key, { prop, kind, fallback, secret }] of Object.entries(fields)) {
    const value = present.get(key);
    const path = at.path === "" ? key : `${at.path}.${key}`;
    if (value !== undefined) {
      values[prop] = kind(secret ? value.asSecret() : value);
    } else if (Object.hasOwn(fallbacks, prop)) {
      values[prop] = (fallbacks as Record<string, unknown>)[prop];
    } else if (fallback === REQUIRED) {
      at.reader.report(at.offset, path, `${path} is required`);
      values[prop] = INVALID;
    } else if (fallback === AS_EMPTY) {
      values[prop] = kind(new At(at.reader, null, path, null, null, secret));
    } else {
      values[prop] = fallback;
    }
  }
  return { values: values as ReadValues<S>, present, at };
}

/** The key's own position, for errors about the key rather than its value. */
function keyOffset(value: At): number | null {
  return value.keyOffset ?? value.offset;
}

/**
 * A kind for a mapping with declared keys; `check` sees every value as read
 * (to compare them) and builds the typed result.
 *
 * @example
 * ```ts
 * const log = section(LOG_FIELDS, (s) => complete(s.values));
 * ```
 */
export function section<S extends Fields, T>(
  fields: S,
  check: (section: Section<S>) => T | Invalid,
): Kind<T> {
  const kind: Kind<T> = (at) => {
    const read = readSection(at, fields);
    return read === INVALID ? INVALID : check(read);
  };
  SECTIONS.set(kind, fields);
  return kind;
}

const SECTIONS = new WeakMap<Kind<unknown>, Fields>();

/** The declared keys of a kind made by {@linkcode section}, for `nsqworker schema`. */
export function sectionFields(kind: Kind<unknown>): Fields | undefined {
  return SECTIONS.get(kind);
}

/**
 * The values when every one was read, otherwise INVALID.
 *
 * @example
 * ```ts
 * const values = complete(section.values);
 * if (values === INVALID) return INVALID;
 * ```
 */
export function complete<R extends Record<string, unknown>>(
  values: R,
): { [K in keyof R]: Exclude<R[K], Invalid> } | Invalid {
  return Object.values(values).some((v) => v === INVALID)
    ? INVALID
    : values as { [K in keyof R]: Exclude<R[K], Invalid> };
}
