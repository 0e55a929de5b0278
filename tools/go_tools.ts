/**
 * Locating the programs the tests run (nsqd, Jaeger), and building them with
 * `go` from a module under `tools/` whose `tool` directives pin them, into a
 * git-ignored cache under `.cache/`.
 *
 * @module
 */
import { delimiter, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** `.exe` on Windows. */
export const EXE_SUFFIX: string = Deno.build.os === "windows" ? ".exe" : "";

const BUILD_DIR_PREFIX = "build-";
/** Far longer than a build takes (minutes from a cold Go cache). */
const STALE_BUILD_MS = 60 * 60 * 1000;

/** A set of programs built together from one Go module. */
export interface GoToolSet {
  /** How messages name the set, e.g. `NSQ v1.3.0`. */
  readonly title: string;
  /** The Go module with the `tool` directives, e.g. `tools/nsq`. */
  readonly moduleDir: string;
  /** The cache; binaries go to its `bin/`. */
  readonly cacheDir: string;
  /** Program name → Go package, as in the module's `tool` directives. */
  readonly packages: Readonly<Record<string, string>>;
  /** How to get the programs without this build, for the error message. */
  readonly howTo: string;
  /** Prefix of progress lines on stderr, e.g. `nsq_bin`. */
  readonly logPrefix: string;
}

/**
 * Builds every program of `set` into `<cacheDir>/bin`. It builds next to the
 * cache and renames into it, so that a killed build never leaves a truncated
 * binary where the next run would pick it up.
 *
 * @throws {Error} when `go` is not on PATH or the build fails, with `howTo`.
 */
export async function buildGoTools(set: GoToolSet): Promise<void> {
  const go = await findOnPath("go" + EXE_SUFFIX);
  if (!go) {
    throw new Error(
      `Cannot build ${set.title}: it is nowhere to be found and no \`go\` is on PATH.\n${set.howTo}`,
    );
  }
  const binDir = join(set.cacheDir, "bin");
  await Deno.mkdir(set.cacheDir, { recursive: true });
  await removeStaleBuilds(set.cacheDir);
  const tmp = await Deno.makeTempDir({ dir: set.cacheDir, prefix: BUILD_DIR_PREFIX });
  const started = performance.now();
  console.error(`${set.logPrefix}: building ${set.title} with ${go} into ${binDir} ...`);
  try {
    const { success, code, stdout, stderr } = await new Deno.Command(go, {
      // A trailing separator makes `go build -o` treat it as a directory for several packages.
      args: ["build", "-o", tmp + sep, ...Object.values(set.packages)],
      cwd: set.moduleDir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) {
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      throw new Error(
        `Cannot build ${set.title} as \`go build\` in ${set.moduleDir} failed with exit code ${code}:\n` +
          `${output.trim().split("\n").slice(-30).join("\n")}\n${set.howTo}`,
      );
    }
    await Deno.mkdir(binDir, { recursive: true });
    for (const name of Object.keys(set.packages)) {
      await Deno.rename(join(tmp, name + EXE_SUFFIX), join(binDir, name + EXE_SUFFIX));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(`${set.logPrefix}: built ${set.title} in ${seconds} s`);
}

/**
 * Removes build directories left by killed builds (an orphaned `go build` may
 * even have finished into one). Recent ones may belong to a build running in
 * another process.
 */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  const staleBefore = Date.now() - STALE_BUILD_MS;
  for await (const entry of Deno.readDir(cacheDir)) {
    if (!entry.isDirectory || !entry.name.startsWith(BUILD_DIR_PREFIX)) continue;
    const path = join(cacheDir, entry.name);
    const { mtime } = await Deno.stat(path);
    if (mtime !== null && mtime.getTime() < staleBefore) {
      await Deno.remove(path, { recursive: true });
    }
  }
}

/** The first executable `file` in a directory of PATH. */
export async function findOnPath(file: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = resolve(dir, file);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Whether `path` is a file that may be run. */
export async function isExecutableFile(path: string): Promise<boolean> {
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
