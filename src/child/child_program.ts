/**
 * How the daemon starts a child process: `nsqworker child` of the same
 * program. In the compiled binary that is the binary itself
 * (`Deno.execPath()`, whose permissions are baked in); under `deno run` it
 * is `deno run` with the daemon's permissions (those granted to the whole
 * process, and read access to the worker modules) on the same main module.
 * Only the prefix of the command line differs.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The program a child runs, as {@linkcode childCommand} needs it. */
export interface ChildProgram {
  /** The executable: the compiled binary, or `deno`. */
  readonly execPath: string;
  /** Whether the executable is a compiled nsqworker (then it takes `child` directly). */
  readonly standalone: boolean;
  /** Under `deno run`: the main module (a file URL) that runs the command line. */
  readonly mainModule: string;
  /** Under `deno run`: the `deno.json` of the main module (its imports), if one was found. */
  readonly denoConfig: string | null;
  /** Under `deno run`: the permission flags a child gets. */
  readonly permissions: readonly string[];
}

/** A child's command: the executable and its arguments. */
export interface ChildCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * The command line of a child of `program`.
 *
 * @example
 * ```ts
 * import { childCommand } from "./child_program.ts";
 *
 * childCommand({
 *   execPath: "/usr/local/bin/nsqworker",
 *   standalone: true,
 *   mainModule: "file:///tmp/deno-compile-nsqworker/main.ts",
 *   denoConfig: null,
 *   permissions: [],
 * }); // { command: "/usr/local/bin/nsqworker", args: ["child"] }
 * ```
 */
export function childCommand(program: ChildProgram): ChildCommand {
  if (program.standalone) return { command: program.execPath, args: ["child"] };
  const main = program.mainModule.startsWith("file:")
    ? fileURLToPath(program.mainModule)
    : program.mainModule;
  return {
    command: program.execPath,
    args: [
      "run",
      "--no-prompt",
      ...(program.denoConfig === null ? [] : [`--config=${program.denoConfig}`]),
      ...program.permissions,
      main,
      "child",
    ],
  };
}

/** The permissions a child may be given, in the order flags are written. */
const NAMES = ["net", "env", "sys", "read", "write", "run", "ffi", "import"] as const;

/**
 * The permission flags of a `deno run` child: each permission granted to
 * this whole process as `--allow-NAME`, and read access to `readPaths` (the
 * worker modules, which a child imports) where this process has it. A
 * permission granted only for some targets is not passed on (Deno does not
 * list them), so a child never has more than the daemon.
 *
 * @example
 * ```ts
 * import { childPermissions } from "./child_program.ts";
 *
 * childPermissions(["/srv/app/workers"]); // e.g. ["--allow-net", "--allow-env", "--allow-read"]
 * ```
 */
export function childPermissions(
  readPaths: readonly string[],
  query: (descriptor: Deno.PermissionDescriptor) => Deno.PermissionState = (descriptor) =>
    Deno.permissions.querySync(descriptor).state,
): string[] {
  const flags: string[] = [];
  for (const name of NAMES) {
    if (query({ name } as Deno.PermissionDescriptor) === "granted") {
      flags.push(`--allow-${name}`);
    } else if (name === "read") {
      const readable = readPaths.filter((path) => query({ name: "read", path }) === "granted");
      if (readable.length > 0) flags.push(`--allow-read=${readable.join(",")}`);
    }
  }
  return flags;
}

/**
 * The program of this process: the compiled binary itself, or `deno run` of
 * its main module with `childPermissions` for `workersDir`.
 */
export function currentChildProgram(workersDir: URL): ChildProgram {
  const standalone = Deno.build.standalone === true;
  const mainModule = Deno.mainModule;
  const workersPath = workersDir.protocol === "file:" ? fileURLToPath(workersDir) : null;
  const mainPath = mainModule.startsWith("file:") ? fileURLToPath(mainModule) : null;
  return {
    execPath: Deno.execPath(),
    standalone,
    mainModule,
    denoConfig: standalone || mainPath === null ? null : findDenoConfig(dirname(mainPath)),
    permissions: standalone ? [] : childPermissions(workersPath === null ? [] : [workersPath]),
  };
}

/** The nearest `deno.json` at or above `dir`, or null (also when it may not be looked for). */
export function findDenoConfig(dir: string): string | null {
  for (let at = dir;; at = dirname(at)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      const path = join(at, name);
      try {
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // Absent, or not readable by this process: look further up.
      }
    }
    if (dirname(at) === at) return null;
  }
}
