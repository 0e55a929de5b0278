/**
 * Durations as written in config.yaml: `250ms`, `5s`, `15m`, `24h`, `7d`, or a
 * combination such as `1h30m`; a plain non-negative integer is milliseconds.
 *
 * @module
 */

const UNIT_MS = new Map([
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
]);

/** A duration in words, as a JSON Schema pattern (see {@linkcode parseDuration}). */
export const DURATION_PATTERN = "^(?:\\d+(?:ms|s|m|h|d))+$";
const DURATION = new RegExp(DURATION_PATTERN);
const PART = /(\d+)(ms|s|m|h|d)/g;

/**
 * Parses a duration into milliseconds, or returns null when `value` is not a
 * duration (or too large to count exactly).
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * parseDuration(250); // 250
 * parseDuration("5 seconds"); // null
 * ```
 */
export function parseDuration(value: unknown): number | null {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? value : null;
  }
  if (typeof value !== "string" || !DURATION.test(value)) return null;
  let ms = 0;
  for (const [, count, unit] of value.matchAll(PART)) {
    ms += Number(count) * (UNIT_MS.get(unit ?? "") ?? Number.NaN);
  }
  return Number.isSafeInteger(ms) ? ms : null;
}

/**
 * Writes milliseconds the way a person would in config.yaml. Hours are the
 * largest unit, as in the documented examples (`24h`, not `1d`).
 *
 * @example
 * ```ts
 * formatDuration(5_400_000); // "1h30m"
 * formatDuration(0); // "0s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const [unit, size] of UNIT_MS) {
    if (unit === "d" || rest < size) continue;
    out += `${Math.floor(rest / size)}${unit}`;
    rest %= size;
  }
  return out;
}
