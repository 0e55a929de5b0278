/**
 * Locating and building the Go programs the tests run (NSQ, Toxiproxy): each
 * comes from a small Go module under `tools/` whose `tool` directives pin its
 * packages, and is built into a git-ignored cache folder.
 *
 * @module
 */
import { delimiter, join, resolve, sep } from "node:path";

/** A set of programs built together from one Go module. */
export interface GoTools<Name extends string> {
  /** What the messages call them, e.g. "NSQ v1.3.0". */
  readonly label: string;
  /** The folder holding the go.mod. */
  readonly moduleDir: string;
  /** The cache folder; binaries land in its `bin/`. */
  readonly cacheDir: string;
  /** Go package of each program, as in the go.mod's `tool` directives. */
  readonly packages: Readonly<Record<Name, string>>;
  /** What to do when there is no `go`, one line per option. */
  readonly howTo: string;
}

const BUILD_DIR_PREFIX = "build-";
/** Far longer than a build takes (one to two minutes from a cold Go cache). */
const STALE_BUILD_MS = 60 * 60 * 1000;
/** `.exe` on Windows. */
export const EXE_SUFFIX: string = Deno.build.os === "windows" ? ".exe" : "";

/** Where the built binaries of `tools` are cached. */
export function cacheBinDir(tools: GoTools<string>): string {
  return join(tools.cacheDir, "bin");
}

/**
 * Returns the absolute path of one program of `tools`, looking in this order:
 * the `<NAME>_BIN` environment variable (`-` as `_`), the build cache, `PATH`; otherwise it
 * builds every program of `tools` with `go` (one build shared by concurrent
 * callers through `building`).
 *
 * @throws {Error} when the program is nowhere and `go` is not on `PATH`, or
 * when `<NAME>_BIN` names no executable file.
 */
export async function locateGoTool<Name extends string>(
  tools: GoTools<Name>,
  name: Name,
  building: { current?: Promise<void> | undefined },
): Promise<string> {
  if (!Object.hasOwn(tools.packages, name)) {
    throw new TypeError(
      `Cannot locate ${tools.label} program as its name must be one of ` +
        `${Object.keys(tools.packages).join(", ")}: current value is ${JSON.stringify(name)}`,
    );
  }
  const envName = `${name.toUpperCase().replaceAll("-", "_")}_BIN`;
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

  const cached = join(cacheBinDir(tools), name + EXE_SUFFIX);
  if (await isExecutableFile(cached)) return cached;

  const onPath = await findOnPath(name + EXE_SUFFIX);
  if (onPath) return onPath;

  building.current ??= buildAll(tools).catch((error) => {
    // Forget the failure so that a later call (e.g. after installing Go) tries again.
    building.current = undefined;
    throw error;
  });
  await building.current;
  return cached;
}

async function buildAll<Name extends string>(tools: GoTools<Name>): Promise<void> {
  const go = await findOnPath("go" + EXE_SUFFIX);
  if (!go) {
    throw new Error(
      `Cannot find ${tools.label}: nothing in ${cacheBinDir(tools)} or on PATH, ` +
        `and no \`go\` on PATH to build it.\n${tools.howTo}`,
    );
  }
  await Deno.mkdir(tools.cacheDir, { recursive: true });
  await removeStaleBuilds(tools.cacheDir);
  // Build next to the cache and rename into it, so that a killed build never
  // leaves a truncated binary where the next run would pick it up.
  const tmp = await Deno.makeTempDir({ dir: tools.cacheDir, prefix: BUILD_DIR_PREFIX });
  const started = performance.now();
  const binDir = cacheBinDir(tools);
  console.error(`go_build: building ${tools.label} with ${go} into ${binDir} ...`);
  try {
    const { success, code, stdout, stderr } = await new Deno.Command(go, {
      args: ["build", ...buildArgs(tmp, tools.packages)],
      cwd: tools.moduleDir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) {
      const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      throw new Error(
        `Cannot build ${tools.label} as \`go build\` in ${tools.moduleDir} failed with exit ` +
          `code ${code}:\n${output.trim().split("\n").slice(-30).join("\n")}\n${tools.howTo}`,
      );
    }
    await Deno.mkdir(binDir, { recursive: true });
    for (const name of Object.keys(tools.packages)) {
      await Deno.rename(join(tmp, name + EXE_SUFFIX), join(binDir, name + EXE_SUFFIX));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(`go_build: built ${tools.label} in ${seconds} s`);
}

/**
 * `go build` names a binary after its package's last path element; a program
 * whose name differs (toxiproxy's `cmd/server` as `toxiproxy-server`) is
 * built alone with `-o` naming the file.
 */
function buildArgs(tmp: string, packages: Readonly<Record<string, string>>): string[] {
  const entries = Object.entries(packages);
  if (entries.length === 1 && !entries[0]![1].endsWith(`/${entries[0]![0]}`)) {
    return ["-o", join(tmp, entries[0]![0] + EXE_SUFFIX), entries[0]![1]];
  }
  // A trailing separator makes `go build -o` treat it as a directory for several packages.
  return ["-o", tmp + sep, ...entries.map(([, pkg]) => pkg)];
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
