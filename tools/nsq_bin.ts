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
import { delimiter, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

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

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const GO_MODULE_DIR = join(REPO_ROOT, "tools", "nsq");
const CACHE_DIR = join(REPO_ROOT, ".cache", "nsq");
/** Where built binaries are cached (git-ignored). */
export const NSQ_CACHE_BIN_DIR: string = join(CACHE_DIR, "bin");

const BUILD_DIR_PREFIX = "build-";
/** Far longer than a build takes (one to two minutes from a cold Go cache). */
const STALE_BUILD_MS = 60 * 60 * 1000;
const EXE_SUFFIX = Deno.build.os === "windows" ? ".exe" : "";

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

  building ??= buildAll().catch((error) => {
    // Forget the failure so that a later call (e.g. after installing Go) tries again.
    building = undefined;
    throw error;
  });
  await building;
  return cached;
}

async function buildAll(): Promise<void> {
  const go = await findOnPath("go" + EXE_SUFFIX);
  if (!go) {
    throw new Error(
      "Cannot find NSQ: no NSQD_BIN/NSQLOOKUPD_BIN, nothing in .cache/nsq/bin or on PATH, " +
        `and no \`go\` on PATH to build it.\n${HOW_TO_GET_NSQ}`,
    );
  }
  await Deno.mkdir(CACHE_DIR, { recursive: true });
  await removeStaleBuilds();
  // Build next to the cache and rename into it, so that a killed build never
  // leaves a truncated binary where the next run would pick it up.
  const tmp = await Deno.makeTempDir({ dir: CACHE_DIR, prefix: BUILD_DIR_PREFIX });
  const started = performance.now();
  console.error(`nsq_bin: building NSQ v1.3.0 with ${go} into ${NSQ_CACHE_BIN_DIR} ...`);
  try {
    const { success, code, stdout, stderr } = await new Deno.Command(go, {
      // A trailing separator makes `go build -o` treat it as a directory for several packages.
      args: ["build", "-o", tmp + sep, ...Object.values(PACKAGES)],
      cwd: GO_MODULE_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) {
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      throw new Error(
        `Cannot build NSQ as \`go build\` in ${GO_MODULE_DIR} failed with exit code ${code}:\n` +
          `${output.trim().split("\n").slice(-30).join("\n")}\n${HOW_TO_GET_NSQ}`,
      );
    }
    await Deno.mkdir(NSQ_CACHE_BIN_DIR, { recursive: true });
    for (const name of NSQ_BIN_NAMES) {
      await Deno.rename(join(tmp, name + EXE_SUFFIX), join(NSQ_CACHE_BIN_DIR, name + EXE_SUFFIX));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(`nsq_bin: built NSQ in ${seconds} s`);
}

/**
 * Removes build directories left by killed builds (an orphaned `go build` may
 * even have finished into one). Recent ones may belong to a build running in
 * another process.
 */
async function removeStaleBuilds(): Promise<void> {
  const staleBefore = Date.now() - STALE_BUILD_MS;
  for await (const entry of Deno.readDir(CACHE_DIR)) {
    if (!entry.isDirectory || !entry.name.startsWith(BUILD_DIR_PREFIX)) continue;
    const path = join(CACHE_DIR, entry.name);
    const { mtime } = await Deno.stat(path);
    if (mtime !== null && mtime.getTime() < staleBefore) {
      await Deno.remove(path, { recursive: true });
    }
  }
}

async function findOnPath(file: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = resolve(dir, file);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    // Windows reports no mode; there any file counts.
    return info.isFile && (info.mode === null || (info.mode & 0o111) !== 0);
  } catch (error) {
    // A missing Deno permission is the caller's to fix; anything else means "not here".
    if (error instanceof Deno.errors.NotCapable) throw error;
    return false;
  }
}

if (import.meta.main) {
  try {
    for (const name of NSQ_BIN_NAMES) console.log(`${name}\t${await nsqBin(name)}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
