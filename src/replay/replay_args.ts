/**
 * The flags of `nsqworker replay`, read into {@linkcode ReplayOptions}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isNsqName, NSQ_NAME_RULE } from "../config/names.ts";

/** What one replay run does. Topics are written as in the config: `topic_prefix` is added. */
export interface ReplayOptions {
  readonly configPath: string;
  /** The dead letter topic to read, e.g. `pageviews.dead`. */
  readonly from: string;
  /** Where every body goes; null: the topic named in its envelope. */
  readonly to: string | null;
  readonly channel: string;
  /** Replay only these reasons (any of them); empty: all. */
  readonly reasons: readonly string[];
  /** Replay only these workers (any of them); empty: all. */
  readonly workers: readonly string[];
  /** Replay only dead letters whose error contains this text. */
  readonly match: string | null;
  /** Replay at most this many. */
  readonly limit: number | null;
  /** At most `count` publishes per `perMs`. */
  readonly rate: { readonly count: number; readonly perMs: number } | null;
  /**
   * `replay` publishes; `dry-run` counts what would be; `show` prints the
   * matching dead letters. The last two change nothing.
   */
  readonly mode: ReplayMode;
}

/** What a run does with the matching dead letters. */
export type ReplayMode = "replay" | "dry-run" | "show";

/** A flag that cannot be used; the CLI answers it with exit code 2. */
export class ReplayUsageError extends Error {
  /** `message` says which flag, what was expected and what was found. */
  constructor(message: string) {
    super(message);
    this.name = "ReplayUsageError";
  }
}

const RATE = /^([1-9]\d*)\/(s|m|h)$/;
const PER_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Reads the arguments after `replay`.
 *
 * @example
 * ```ts
 * const options = parseReplayArgs(["--from", "pageviews.dead", "--reason", "validate"]);
 * ```
 */
export function parseReplayArgs(args: readonly string[]): ReplayOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c", default: "config.yaml" },
        from: { type: "string" },
        to: { type: "string" },
        channel: { type: "string", default: "replay" },
        reason: { type: "string", multiple: true, default: [] },
        worker: { type: "string", multiple: true, default: [] },
        match: { type: "string" },
        limit: { type: "string" },
        rate: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        show: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    throw new ReplayUsageError(`replay: ${(error as Error).message}`);
  }
  const { values } = parsed;
  if (values.from === undefined) {
    throw new ReplayUsageError("replay needs --from TOPIC, the dead letter topic to read");
  }
  if (values["dry-run"] && values.show) {
    throw new ReplayUsageError(
      "replay takes --dry-run (count) or --show (print), not both; neither changes anything",
    );
  }
  const name = (flag: string, value: string) => {
    if (!isNsqName(value)) {
      throw new ReplayUsageError(
        `replay ${flag} must be an NSQ name (${NSQ_NAME_RULE}), got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  return {
    configPath: values.config,
    from: name("--from", values.from),
    to: values.to === undefined ? null : name("--to", values.to),
    channel: name("--channel", values.channel),
    reasons: values.reason,
    workers: values.worker,
    match: values.match ?? null,
    limit: values.limit === undefined ? null : positiveInteger("--limit", values.limit),
    rate: values.rate === undefined ? null : rate(values.rate),
    mode: values.show ? "show" : values["dry-run"] ? "dry-run" : "replay",
  };
}

function positiveInteger(flag: string, text: string): number {
  const n = Number(text);
  if (/^\d+$/.test(text) && Number.isSafeInteger(n) && n > 0) return n;
  throw new ReplayUsageError(
    `replay ${flag} must be a positive integer, got ${JSON.stringify(text)}`,
  );
}

function rate(text: string): { count: number; perMs: number } {
  // A bare number is per second, as operators usually think of it.
  const [, count, unit] = RATE.exec(/^\d+$/.test(text) ? `${text}/s` : text) ?? [];
  const perMs = PER_MS[unit ?? ""];
  const n = Number(count);
  if (perMs === undefined || !Number.isSafeInteger(n)) {
    throw new ReplayUsageError(
      `replay --rate must be a rate like 100/s, 50/m or 1000/h, got ${JSON.stringify(text)}`,
    );
  }
  return { count: n, perMs };
}
