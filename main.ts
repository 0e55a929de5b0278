/**
 * The nsqworker command line, and the entry point of the compiled binary.
 *
 * @module
 */

import { main, STDIO } from "./src/cli/cli.ts";

if (import.meta.main) Deno.exit(await main(Deno.args, STDIO));
