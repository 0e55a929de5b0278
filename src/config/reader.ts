/**
 * Walking a parsed YAML document with key paths and source positions, so
 * every check can report where it found a problem. Issues are collected, not
 * thrown: a config file is reported in full.
 *
 * @module
 */

import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  parseDocument,
  Scalar,
} from "yaml";
import type { ConfigIssue } from "./config_error.ts";
import { expandEnv } from "./env.ts";
import type { SourceLocation } from "./types.ts";

/** Marks a value that could not be read; its issue has been reported already. */
export const INVALID: unique symbol = Symbol("invalid");
/** The type of {@linkcode INVALID}. */
export type Invalid = typeof INVALID;

/** A key of a mapping, with where its value is. */
export interface KeyedValue {
  readonly key: string;
  readonly at: At;
}

/** A value as found in the document, `${...}` expanded. */
export type Found =
  | {
    readonly shape: "scalar";
    /** null, boolean, number, string (or whatever a YAML tag produced). */
    readonly value: unknown;
    /** The text of a plain (unquoted) scalar after expansion; null when quoted or a block. */
    readonly text: string | null;
    readonly fromEnv: boolean;
  }
  | { readonly shape: "list"; readonly items: readonly At[] }
  | { readonly shape: "mapping"; readonly entries: readonly KeyedValue[] };

/**
 * Aliases are followed each time they are read; nested ones multiply. This
 * bounds the work a small file can cause (the "billion laughs").
 */
const MAX_ALIAS_READS = 10_000;

/** Where a key and its value are written. */
export interface KeyLocation {
  readonly key: SourceLocation;
  readonly value: SourceLocation;
}

/** Collects the issues of one file and knows how to place a node in it. */
export class Reader {
  readonly #issues: { offset: number | null; issue: ConfigIssue }[] = [];
  /** Every key read so far, by key path: checks made after parsing report there. */
  readonly #keys = new Map<string, { key: number; value: number }>();
  readonly #targets = new Map<Alias, Node | undefined>();
  /** How many times an alias has been followed so far. */
  aliasReads = 0;

  constructor(
    readonly file: string,
    readonly source: string,
    readonly env: Readonly<Record<string, string | undefined>>,
    readonly lineCounter: LineCounter,
    readonly doc: Document,
  ) {}

  /** Records an issue at a character offset of the source (null: no position). */
  report(offset: number | null, path: string, message: string): void {
    const pos = offset === null ? null : this.lineCounter.linePos(offset);
    this.#issues.push({
      offset,
      issue: { file: this.file, line: pos?.line ?? null, col: pos?.col ?? null, path, message },
    });
  }

  /** The node an alias stands for (cached: yaml searches the document each time). */
  resolve(alias: Alias): Node | undefined {
    if (!this.#targets.has(alias)) this.#targets.set(alias, alias.resolve(this.doc));
    return this.#targets.get(alias);
  }

  /** 1-based line and column of an offset. */
  locate(offset: number): SourceLocation {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col };
  }

  /**
   * Where each key read so far is written, by key path (e.g.
   * `nsq.tls.ca_file`, `workers[0].options.label`).
   */
  keyLocations(): Record<string, KeyLocation> {
    const out: Record<string, KeyLocation> = {};
    for (const [path, { key, value }] of this.#keys) {
      out[path] = { key: this.locate(key), value: this.locate(value) };
    }
    return out;
  }

  /** Records where the key at `path` and its value are written; the first reading counts. */
  placeKey(path: string, key: number | null, value: number | null): void {
    if (this.#keys.has(path) || (key === null && value === null)) return;
    this.#keys.set(path, { key: key ?? value!, value: value ?? key! });
  }

  /** Every issue so far in document order (unplaced ones last), without repeats. */
  issues(): ConfigIssue[] {
    const seen = new Set<string>();
    return this.#issues
      .map((entry, index) => ({ ...entry, index }))
      .sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity) || a.index - b.index)
      .map((entry) => entry.issue)
      .filter((issue) => {
        // An aliased node is read once per alias; report its problems once.
        const key = `${issue.line}:${issue.col}:${issue.message}`;
        return seen.has(key) ? false : (seen.add(key), true);
      });
  }
}

/** A node of the document (or the absence of one) at a key path. */
export class At {
  constructor(
    readonly reader: Reader,
    /** null when the key has no value, as in flow `{ key }`. */
    readonly node: Node | null,
    /** Key path such as `workers[0].topic`; empty for the document itself. */
    readonly path: string,
    /** Where to report problems; null when the value has no place in the file. */
    readonly offset: number | null,
    /** Where the value's key is written; null for list items and the document. */
    readonly keyOffset: number | null = null,
    /** When set, messages describe the value's type, never the value. */
    readonly secret = false,
  ) {}

  /** The same place, with messages that never show the value. */
  asSecret(): At {
    return new At(this.reader, this.node, this.path, this.offset, this.keyOffset, true);
  }

  /** The node this value stands for: an alias's anchored node, or the node itself. */
  target(): Node | null {
    return isAlias(this.node) ? this.reader.resolve(this.node) ?? null : this.node;
  }

  /** Reports `message` (which names the path itself) here; returns INVALID. */
  report(message: string): Invalid {
    this.reader.report(this.offset, this.path, message);
    return INVALID;
  }

  /** Reports `<path> <rest>` here, e.g. `fail("must be a string, got 1")`. */
  fail(rest: string): Invalid {
    return this.report(`${this.path} ${rest}`);
  }

  /** Reports `<path> must be <expected>, got <found>`. */
  mustBe(expected: string, found: Found): Invalid {
    return this.fail(`must be ${expected}, got ${describe(found, this.secret)}`);
  }

  /** The file position of this value (of its key when the value is empty). */
  location(): SourceLocation {
    return this.reader.locate(this.offset ?? 0);
  }

  /** Reads the node: expands `${...}` in scalars, lists items and keys. */
  found(): Found | Invalid {
    let node = this.node;
    if (isAlias(node)) {
      const reads = ++this.reader.aliasReads;
      if (reads > MAX_ALIAS_READS) {
        if (reads > MAX_ALIAS_READS + 1) return INVALID;
        return this.fail(`expands aliases too many times (more than ${MAX_ALIAS_READS})`);
      }
      const target = this.reader.resolve(node);
      if (target === undefined) return this.fail(`refers to an unknown anchor *${node.source}`);
      node = target;
    }
    if (node === null || isScalar(node)) return this.#scalar(node);
    if (isSeq(node)) {
      return {
        shape: "list",
        items: node.items.map((item, i) => this.#child(item, `${this.path}[${i}]`, null)),
      };
    }
    if (isMap(node)) return this.#mapping(node.items);
    return this.fail("is a YAML node this config cannot use");
  }

  #scalar(node: Scalar | null): Found | Invalid {
    if (node === null) return { shape: "scalar", value: null, text: null, fromEnv: false };
    const plain = node.type === Scalar.PLAIN;
    const range = node.range;
    const source = range ? this.reader.source.slice(range[0], range[1]) : String(node.value);
    if (typeof node.value !== "string") {
      return { shape: "scalar", value: node.value, text: plain ? source : null, fromEnv: false };
    }
    const expansion = expandEnv(node.value, this.reader.env);
    if (!expansion.ok) {
      for (const problem of expansion.problems) this.report(`${this.path}: ${problem}`);
      return INVALID;
    }
    const { text, expanded } = expansion;
    if (!plain) return { shape: "scalar", value: text, text: null, fromEnv: expanded };
    return { shape: "scalar", value: expanded ? retype(text) : text, text, fromEnv: expanded };
  }

  #mapping(pairs: readonly { key: unknown; value: unknown }[]): Found | Invalid {
    const entries: KeyedValue[] = [];
    const firstLine = new Map<string, number>();
    for (const pair of pairs) {
      const keyNode = isScalar(pair.key) ? pair.key : null;
      const keyOffset = rangeStart(pair.key) ?? this.offset;
      if (keyNode === null || keyNode.value === null || typeof keyNode.value === "object") {
        this.reader.report(
          keyOffset,
          this.path,
          `${this.path || "the config"} has a key that is not a name`,
        );
        continue;
      }
      const key = String(keyNode.value);
      const path = this.path === "" ? key : `${this.path}.${key}`;
      const first = firstLine.get(key);
      if (first !== undefined) {
        this.reader.report(keyOffset, path, `${path} is given twice (first at line ${first})`);
        continue;
      }
      firstLine.set(key, keyOffset === null ? 0 : this.reader.lineCounter.linePos(keyOffset).line);
      const at = this.#child(pair.value, path, keyOffset);
      this.reader.placeKey(path, keyOffset, at.offset);
      entries.push({ key, at });
    }
    return { shape: "mapping", entries };
  }

  #child(value: unknown, path: string, keyOffset: number | null): At {
    const node = isAlias(value) || isScalar(value) || isSeq(value) || isMap(value) ? value : null;
    const start = rangeStart(node);
    // An empty value (`key:`) has an empty range after the colon: point at the key.
    const empty = node === null || (node.range != null && node.range[0] === node.range[1]);
    const offset = empty ? keyOffset ?? start : start;
    return new At(this.reader, node, path, offset, keyOffset, this.secret);
  }
}

/**
 * How a found value is shown after "got": scalars as JSON, collections by
 * shape, secrets by type only.
 */
export function describe(found: Found, secret = false): string {
  if (found.shape === "list") return found.items.length === 0 ? "an empty list" : "a list";
  if (found.shape === "mapping") return "a mapping";
  const value = found.value;
  if (value === null || value === undefined) return "null";
  if (secret) return typeof value === "string" ? "a string" : `a ${typeof value}`;
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (typeof value === "object") return "binary data";
  return JSON.stringify(value);
}

function rangeStart(node: unknown): number | null {
  const range = (node as { range?: readonly number[] | null } | null)?.range;
  return range?.[0] ?? null;
}

/**
 * Re-reads the expansion of a plain scalar as YAML would have read it had it
 * been written in place, so `${MIF:-10}` is the integer 10. The empty string
 * stays a string: `${PREFIX:-}` means "empty", not null.
 */
function retype(text: string): unknown {
  if (text === "" || /[\r\n]/.test(text)) return text;
  const doc = parseDocument(text);
  const node = doc.contents;
  const whole = isScalar(node) && node.type === Scalar.PLAIN && node.range?.[0] === 0 &&
    node.range[1] === text.length;
  return doc.errors.length === 0 && whole ? node.value : text;
}
