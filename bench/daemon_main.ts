/**
 * The daemon as the bench runs it: the real command line (`src/cli/cli.ts`),
 * with worker modules from `bench/workers/` instead of `workers/` (which
 * ship in the binary). It exits when the bench does (see stdin_watch.ts).
 *
 * `--no-dedupe` (bench only, first argument) replaces the memory store's
 * methods with no-ops, for the dedupe-cost baseline: the daemon itself has
 * no way to run without a dedupe store.
 *
 * @module
 */

import { main, STDIO } from "../src/cli/cli.ts";
import { MemoryStore } from "../src/dedupe/memory_store.ts";
import type { Claim } from "../src/dedupe/store.ts";
import { exitWithParent } from "./stdin_watch.ts";

const MAX_LIFE_MS = 30 * 60_000;

function disableDedupe(): void {
  const claimed: Claim = Object.freeze({ status: "claimed", token: "0" });
  const proto = MemoryStore.prototype as unknown as Record<string, unknown>;
  proto.claim = () => claimed;
  proto.done = () => {};
  proto.release = () => {};
  proto.renew = () => {};
  proto.check = () => "free";
  proto.markDone = () => {};
}

if (import.meta.main) {
  // A child process of `processes: N` speaks its frames on stdin: only the daemon watches it.
  if (Deno.args[0] !== "child") exitWithParent(MAX_LIFE_MS);
  let args = Deno.args;
  if (args[0] === "--no-dedupe") {
    disableDedupe();
    args = args.slice(1);
  }
  const code = await main(args, STDIO, { workersDir: new URL("./workers/", import.meta.url) });
  Deno.exit(code);
}
