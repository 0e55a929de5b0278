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
import { join, resolve } from "node:path";
import {
  buildGoTools,
  EXE_SUFFIX,
  findOnPath,
  type GoToolSet,
  isExecutableFile,
  REPO_ROOT,
} from "./go_tools.ts";

/** The NSQ programs that {@linkcode nsqBin} can locate or build. */
export type NsqBinName = "nsqd" | "nsqlookupd" | "nsq_tail" | "to_nsq" | "bench_reader";

/** Go package of each program, as listed in the `tool` directives of `tools/nsq/go.mod`. */
const PACKAGES: Readonly<Record<NsqBinName, string>> = {
  nsqd: "github.com/nsqio/nsq/apps/nsqd",
  nsqlookupd: "github.com/nsqio/nsq/apps/nsqlookupd",
  nsq_tail: "github.com/nsqio/nsq/apps/nsq_tail",
  to_nsq: "github.com/nsqio/nsq/apps/to_nsq",
  bench_reader: "github.com/nsqio/nsq/bench/bench_reader",
};

/** Every name {@linkcode nsqBin} accepts, in a stable order. */
export const NSQ_BIN_NAMES: readonly NsqBinName[] = Object.keys(PACKAGES) as NsqBinName[];

const CACHE_DIR = join(REPO_ROOT, ".cache", "nsq");
/** Where built binaries are cached (git-ignored). */
export const NSQ_CACHE_BIN_DIR: string = join(CACHE_DIR, "bin");

const HOW_TO_GET_NSQ = [
  "To get NSQ v1.3.0, do one of:",
  "  - install Go 1.24 or newer (https://go.dev/dl/; tools/nsq/go.mod's `tool` directives need",
  "    1.24) and rerun: tools/nsq_bin.ts then builds nsqd and friends into .cache/nsq/bin;",
  "  - set NSQD_BIN and NSQLOOKUPD_BIN to the paths of nsqd and nsqlookupd binaries;",
  "  - put nsqd and nsqlookupd v1.3.0 on PATH (https://nsq.io/deployment/installing.html).",
].join("\n");

/** One build shared by all concurrent callers in this process. */
let building: Promise<void> | undefined;

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
export async function nsqBin(name: NsqBinName): Promise<string> {
  if (!Object.hasOwn(PACKAGES, name)) {
    throw new TypeError(
      `Cannot locate NSQ program as its name must be one of ${NSQ_BIN_NAMES.join(", ")}: ` +
        `current value is ${JSON.stringify(name)}`,
    );
  }
  const envName = `${name.toUpperCase()}_BIN`;
  const fromEnv = Deno.env.get(envName);
  if (fromEnv) {
    const path = resolve(fromEnv);
    if (!(await isExecutableFile(path))) {
      throw new Error(
        `Cannot use ${envName} as it names no executable file: current value is "${path}"`,
      );
    }
    return path;
  }

  const cached = join(NSQ_CACHE_BIN_DIR, name + EXE_SUFFIX);
  if (await isExecutableFile(cached)) return cached;

  const onPath = await findOnPath(name + EXE_SUFFIX);
  if (onPath) return onPath;

  building ??= buildGoTools(NSQ_TOOLS).catch((error) => {
    // Forget the failure so that a later call (e.g. after installing Go) tries again.
    building = undefined;
    throw error;
  });
  await building;
  return cached;
}

const NSQ_TOOLS: GoToolSet = {
  title: "NSQ v1.3.0",
  moduleDir: join(REPO_ROOT, "tools", "nsq"),
  cacheDir: CACHE_DIR,
  packages: PACKAGES,
  howTo: HOW_TO_GET_NSQ,
  logPrefix: "nsq_bin",
};

if (import.meta.main) {
  try {
    for (const name of NSQ_BIN_NAMES) console.log(`${name}\t${await nsqBin(name)}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
