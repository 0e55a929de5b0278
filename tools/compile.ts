/**
 * `deno task compile`: builds `dist/nsqworker`, one binary with every module
 * of `workers/` and the stall watchdog's worker module embedded, and the
 * narrowest permissions that work baked in.
 *
 * Usage: deno task compile [--target TRIPLE] [--config-dir DIR] [--data-dir DIR]
 *                          [--install-path FILE] [--output FILE] [--dry-run]
 *
 * `deno compile` needs its runtime, denort, which it downloads unless
 * DENORT_BIN names a local copy; on a machine without that download host,
 * set DENORT_BIN (or put `denort` beside `deno`).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The options of a build. */
export interface CompileOptions {
  /** Where config.yaml and the TLS files live on the host. */
  readonly configDir: string;
  /** Where a `sqlite:` dedupe store may live (read and write). */
  readonly dataDir: string;
  /**
   * Where the binary is installed on the host: the one program it may run,
   * itself, as the children of entries with `processes` (default
   * `/usr/local/bin/nsqworker`, as in `deploy/`).
   */
  readonly installPath?: string;
  readonly output: string;
  readonly target?: string;
}

/**
 * The permissions baked into the binary, and why:
 * - `--allow-net`: nsqd, nsqlookupd, redis and the HTTP listener are all
 *   named by the config, so no fixed host list fits;
 * - `--allow-env`: `${VAR}` in the config may name any variable;
 * - `--allow-sys=hostname`: nsqd's IDENTIFY carries the host name;
 * - `--allow-read=<config dir>,<data dir>`: the config, its TLS files, and
 *   the sqlite store; worker modules are embedded and need no read access;
 * - `--allow-write=<data dir>`: the sqlite store (and its -wal/-shm files);
 * - `--allow-run=<install path>`: the binary itself and nothing else, for
 *   the child processes of entries with `processes` (a compiled binary
 *   cannot learn at build time where it will be installed, so the path is
 *   an option; installed elsewhere, such an entry is refused at start).
 * Never a blanket `--allow-run`, `--allow-ffi` or `--allow-all`.
 */
export function permissionFlags(options: CompileOptions): string[] {
  return [
    "--allow-net",
    "--allow-env",
    "--allow-sys=hostname",
    `--allow-read=${options.configDir},${options.dataDir}`,
    `--allow-write=${options.dataDir}`,
    `--allow-run=${options.installPath ?? DEFAULT_INSTALL_PATH}`,
  ];
}

/** Where `deploy/` installs the binary. */
export const DEFAULT_INSTALL_PATH = "/usr/local/bin/nsqworker";
/**
 * The modules loaded by path at run time, which `deno compile` finds only when
 * told: the worker modules (imported by name from the config) and the stall
 * watchdog's Web Worker (`src/daemon/stall_watchdog.ts` starts it).
 */
export const EMBEDDED = ["workers/", "src/daemon/stall_watchdog_worker.ts"] as const;

/** The full `deno compile` argument list. */
export function compileArgs(options: CompileOptions): string[] {
  return [
    "compile",
    ...permissionFlags(options),
    ...EMBEDDED.flatMap((path) => ["--include", path]),
    "--output",
    options.output,
    ...(options.target ? ["--target", options.target] : []),
    "main.ts",
  ];
}

/** Where deno compile looks for a denort of its own: beside the deno binary. */
export function denortBesideDeno(): string {
  return Deno.execPath().replace(/deno(\.exe)?$/, "denort$1");
}

/** A denort to build with offline: DENORT_BIN, or `denort` beside `deno`. */
export async function findDenort(): Promise<string | null> {
  const fromEnv = Deno.env.get("DENORT_BIN");
  if (fromEnv) return fromEnv;
  const beside = denortBesideDeno();
  try {
    await Deno.stat(beside);
    return beside;
  } catch {
    return null;
  }
}

/**
 * The one message for a build that failed because deno compile could not
 * download its runtime, or null when `stderr` tells of another failure.
 * deno compile reports that with a chain of causes and a Rust backtrace.
 */
export function denortDownloadFailure(
  stderr: string,
  target: string = Deno.build.target,
): string | null {
  if (!/Setting up base binary|denort/.test(stderr)) return null;
  const cause = /error sending request for url \(([^)]+)\)[^\n]*/.exec(stderr);
  const url = cause?.[1] ??
    `https://dl.deno.land/release/v${Deno.version.deno}/denort-${target}.zip`;
  const reason = cause?.[0].split(": ").slice(-1)[0] ?? "the download failed";
  const beside = denortBesideDeno();
  return [
    `compile: deno compile could not download its runtime (denort) from ${url}: ${reason}.`,
    `  To build offline, set DENORT_BIN to a denort of Deno ${Deno.version.deno} for ${target}, ` +
    `or put it beside deno as ${beside}.`,
    `  A denort comes from that URL (a zip with the denort binary inside), fetched on a machine ` +
    `that can reach it.`,
  ].join("\n");
}

/** Removes `dir` if this build created it and left it empty. */
async function removeIfEmpty(dir: string): Promise<void> {
  try {
    await Deno.remove(dir); // not recursive: refuses a directory with something in it
  } catch {
    // Not empty, or not ours to remove: leave it.
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      target: { type: "string" },
      "config-dir": { type: "string", default: "/etc/nsqworker" },
      "data-dir": { type: "string", default: "/var/lib/nsqworker" },
      "install-path": { type: "string", default: DEFAULT_INSTALL_PATH },
      output: { type: "string", default: "dist/nsqworker" },
      "dry-run": { type: "boolean", default: false },
    },
  });
  const args = compileArgs({
    configDir: values["config-dir"],
    dataDir: values["data-dir"],
    installPath: values["install-path"],
    output: values.output,
    ...(values.target ? { target: values.target } : {}),
  });
  console.log(`deno ${args.join(" ")}`);
  if (values["dry-run"]) Deno.exit(0);
  const denort = await findDenort();
  const env: Record<string, string> = denort ? { DENORT_BIN: denort } : {};
  const root = new URL("../", import.meta.url);
  const outputDir = new URL(values.output.replace(/[^/]*$/, "") || "./", root);
  const dirExisted = await Deno.stat(outputDir).then(() => true, () => false);
  const { code, stderr } = await new Deno.Command("deno", { args, env, cwd: root, stderr: "piped" })
    .output();
  const errors = new TextDecoder().decode(stderr);
  if (code === 0) {
    await Deno.stderr.write(stderr);
    Deno.exit(0);
  }
  // deno compile removes its temporary file; the directory it made for it is ours to remove.
  if (!dirExisted) await removeIfEmpty(outputDir.pathname);
  const offline = denortDownloadFailure(errors, values.target);
  console.error(offline ?? errors.trimEnd());
  Deno.exit(1);
}
