/**
 * Random W3C trace and span ids, for the traces the daemon starts itself
 * without a span (an unsampled delivery still hands on a trace id).
 *
 * @module
 */

/** Bytes drawn at once: one call to the system's random source serves 170 traces. */
const pool = new Uint8Array(4096);
let taken = pool.length;
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

function randomHex(bytes: number): string {
  if (taken + bytes > pool.length) {
    crypto.getRandomValues(pool);
    taken = 0;
  }
  let hex = "";
  for (const end = taken + bytes; taken < end; taken++) hex += HEX[pool[taken]!];
  return hex;
}

/**
 * 32 lowercase hex digits, random, never all zero.
 *
 * @example
 * ```ts
 * import { randomTraceId } from "./trace_ids.ts";
 *
 * randomTraceId(); // e.g. "4bf92f3577b34da6a3ce929d0e0e4736"
 * ```
 */
export function randomTraceId(): string {
  for (;;) {
    const id = randomHex(16);
    if (id !== "00000000000000000000000000000000") return id;
  }
}

/**
 * 16 lowercase hex digits, random, never all zero.
 *
 * @example
 * ```ts
 * import { randomSpanId } from "./trace_ids.ts";
 *
 * randomSpanId(); // e.g. "00f067aa0ba902b7"
 * ```
 */
export function randomSpanId(): string {
  for (;;) {
    const id = randomHex(8);
    if (id !== "0000000000000000") return id;
  }
}
