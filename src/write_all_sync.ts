/**
 * Writing text to a stream synchronously and whole.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes all of `text` to `stream`: `writeSync` may write only part of what
 * it is given, so it is called until nothing is left, which keeps lines
 * whole and in order. Throws what `writeSync` throws (a closed pipe).
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./write_all_sync.ts";
 *
 * writeAllSync(Deno.stdout, "done\n");
 * ```
 */
export function writeAllSync(stream: typeof Deno.stdout, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}
