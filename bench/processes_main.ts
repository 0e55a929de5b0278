/**
 * Runs one command line N times, as the bench's "processes" peer: N daemons
 * draining one channel are then one process tree, whose CPU time the bench
 * reads at once. `processes_main.ts N COMMAND ARGS…`.
 *
 * On SIGTERM it stops every copy (SIGTERM, each shuts down gracefully) and
 * exits; when a copy exits by itself, it prints that copy's last output,
 * stops the others and exits 1, so that the bench sees the peer fail. It
 * exits when the bench does (stdin_watch.ts), and its copies then do too:
 * their stdin is a pipe from this process.
 *
 * @module
 */

import { spawn } from "./child.ts";
import { exitWithParent } from "./stdin_watch.ts";

const MAX_LIFE_MS = 30 * 60_000;

if (import.meta.main) {
  exitWithParent(MAX_LIFE_MS);
  const [countText, command, ...args] = Deno.args;
  const count = Number(countText);
  if (!Number.isSafeInteger(count) || count < 1 || command === undefined) {
    console.error(
      `processes_main.ts: expected a positive count and a command, got ${
        JSON.stringify(Deno.args)
      }`,
    );
    Deno.exit(2);
  }
  const copies = Array.from({ length: count }, (_, i) => spawn(`copy ${i + 1}`, command, args));
  let stopping = false;
  const stopAll = async (code: number) => {
    stopping = true;
    await Promise.all(copies.map((copy) => copy.stop()));
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGTERM", () => void stopAll(0));
  for (const copy of copies) {
    copy.exited.then((status) => {
      if (stopping) return;
      console.error(`${copy.label} of ${count} exited (code ${status.code}):\n${copy.tail}`);
      void stopAll(1);
    });
  }
}
