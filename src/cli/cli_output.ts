/**
 * Where the command line writes: stdout and stderr, or what a test captures.
 *
 * @module
 */

import { writeAllSync } from "../write_all_sync.ts";

/** Where the CLI writes; tests capture it. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

/** The process's stdout and stderr. */
export const STDIO: CliOutput = {
  out: (text) => writeAllSync(Deno.stdout, text),
  err: (text) => writeAllSync(Deno.stderr, text),
};
