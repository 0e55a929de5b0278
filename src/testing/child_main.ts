/**
 * The program of a test kit's child process (`runWorker(…, { child })`):
 * the daemon's child, with the worker named by its module's URL instead of
 * a name under `workers/`. Run by the test kit only; not part of the
 * compiled binary.
 *
 * @module
 */

import { serveChildOnStdio } from "../child/child_server.ts";

if (import.meta.main) {
  Deno.exit(await serveChildOnStdio(async (url) => (await import(url)).default));
}
