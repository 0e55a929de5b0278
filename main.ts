/**
 * The nsqworker command line, and the entry point of the compiled binary.
 *
 * @module
 */

import { main } from "./src/cli.ts";

const encoder = new TextEncoder();

/** writeSync may write only part of what it is given. */
function writeAll(stream: typeof Deno.stdout, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

if (import.meta.main) {
  const code = await main(Deno.args, {
    out: (text) => writeAll(Deno.stdout, text),
    err: (text) => writeAll(Deno.stderr, text),
  });
  Deno.exit(code);
}
