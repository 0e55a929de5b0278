/**
 * Where the command line writes: stdout and stderr, or what a test captures.
 *
 * @module
 */

/** Where the CLI writes; tests capture it. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const encoder = new TextEncoder();

/** writeSync may write only part of what it is given. */
function writeAll(stream: typeof Deno.stdout, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/** The process's stdout and stderr. */
export const STDIO: CliOutput = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
};
