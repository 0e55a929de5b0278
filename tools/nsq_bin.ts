/**
 * Locates the NSQ v1.3.0 binaries that the integration tests and `deno task dev`
 * run, building them with `go` from the module in `tools/nsq/` when they are
 * nowhere to be found.
 *
 * Run it as a script to locate (or build) all of them up front and print their
 * paths, so a slow first build shows up on its own instead of inside a test
 * timeout:
 *
 * ```sh
 * deno run -A tools/nsq_bin.ts
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheBinDir, type GoTools, locateGoTool } from "./go_build.ts";

/** The NSQ programs that {@linkcode nsqBin} can locate or build. */
export type NsqBinName = "nsqd" | "nsqlookupd" | "nsq_tail" | "to_nsq" | "bench_reader";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

const NSQ: GoTools<NsqBinName> = {
  label: "NSQ v1.3.0",
  moduleDir: join(REPO_ROOT, "tools", "nsq"),
  cacheDir: join(REPO_ROOT, ".cache", "nsq"),
  // As listed in the `tool` directives of `tools/nsq/go.mod`.
  packages: {
    nsqd: "github.com/nsqio/nsq/apps/nsqd",
    nsqlookupd: "github.com/nsqio/nsq/apps/nsqlookupd",
    nsq_tail: "github.com/nsqio/nsq/apps/nsq_tail",
    to_nsq: "github.com/nsqio/nsq/apps/to_nsq",
    bench_reader: "github.com/nsqio/nsq/bench/bench_reader",
  },
  howTo: [
    "To get NSQ v1.3.0, do one of:",
    "  - install Go 1.24 or newer (https://go.dev/dl/; tools/nsq/go.mod's `tool` directives need",
    "    1.24) and rerun: tools/nsq_bin.ts then builds nsqd and friends into .cache/nsq/bin;",
    "  - set NSQD_BIN and NSQLOOKUPD_BIN to the paths of nsqd and nsqlookupd binaries;",
    "  - put nsqd and nsqlookupd v1.3.0 on PATH (https://nsq.io/deployment/installing.html).",
  ].join("\n"),
};

/** Every name {@linkcode nsqBin} accepts, in a stable order. */
export const NSQ_BIN_NAMES: readonly NsqBinName[] = Object.keys(NSQ.packages) as NsqBinName[];

/** Where built binaries are cached (git-ignored). */
export const NSQ_CACHE_BIN_DIR: string = cacheBinDir(NSQ);

/** One build shared by all concurrent callers in this process. */
const building: { current?: Promise<void> | undefined } = {};

/**
 * Returns the absolute path of an NSQ program, looking in this order:
 * the `<NAME>_BIN` environment variable (e.g. `NSQD_BIN`), the build cache
 * `.cache/nsq/bin/`, `PATH`; otherwise it builds all programs with `go` into the
 * cache (about a minute the first time).
 *
 * @example
 * ```ts
 * const nsqd = await nsqBin("nsqd");
 * await new Deno.Command(nsqd, { args: ["--version"] }).output();
 * ```
 *
 * @throws {Error} when the program is nowhere and `go` is not on `PATH`, with
 * instructions for getting NSQ; or when `<NAME>_BIN` names no executable file.
 */
export function nsqBin(name: NsqBinName): Promise<string> {
  return locateGoTool(NSQ, name, building);
}

if (import.meta.main) {
  try {
    for (const name of NSQ_BIN_NAMES) console.log(`${name}\t${await nsqBin(name)}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
