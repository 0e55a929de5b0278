/**
 * `nsqworker child`, hidden: the program of an entry's child process
 * (`processes: N`), started by the daemon with frames on its stdin and
 * stdout. Worker modules come from the same place as the daemon's.
 *
 * @module
 */

import { serveChildOnStdio } from "../child/child_server.ts";
import { moduleSource } from "../worker/worker_loader.ts";
import type { CliOutput } from "./cli_output.ts";

/**
 * Serves the daemon on stdin and stdout until it is done with this child;
 * resolves with the exit code. Refuses a terminal: it is no command for a
 * person to run.
 */
export async function childCommand(output: CliOutput, workersDir?: URL): Promise<number> {
  if (Deno.stdin.isTerminal()) {
    output.err(
      "nsqworker child is started by nsqworker run for an entry's processes; not by hand\n",
    );
    return 2;
  }
  return await serveChildOnStdio(moduleSource(workersDir));
}
