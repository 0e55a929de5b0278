/**
 * Locates the Jaeger all-in-one binary (Jaeger v2, `cmd/jaeger` of
 * `github.com/jaegertracing/jaeger` v1.76.0) that the tracing tests send
 * spans to, building it with `go` from the module in `tools/jaeger/` when it
 * is nowhere to be found.
 *
 * Run it as a script to locate (or build) it up front and print its path, so
 * that the slow first build (several minutes) shows up on its own instead of
 * inside a test timeout:
 *
 * ```sh
 * deno run -A tools/jaeger_bin.ts
 * ```
 *
 * @module
 */
import { join, resolve } from "node:path";
import {
  buildGoTools,
  EXE_SUFFIX,
  type GoToolSet,
  isExecutableFile,
  REPO_ROOT,
} from "./go_tools.ts";

const CACHE_DIR = join(REPO_ROOT, ".cache", "jaeger");
/** Where the built binary is cached (git-ignored). */
export const JAEGER_CACHE_BIN_DIR: string = join(CACHE_DIR, "bin");

const JAEGER_TOOLS: GoToolSet = {
  title: "Jaeger v2 (module v1.76.0)",
  moduleDir: join(REPO_ROOT, "tools", "jaeger"),
  cacheDir: CACHE_DIR,
  packages: { jaeger: "github.com/jaegertracing/jaeger/cmd/jaeger" },
  howTo: [
    "To get Jaeger, do one of:",
    "  - install Go 1.24 or newer (https://go.dev/dl/) and rerun: tools/jaeger_bin.ts then",
    "    builds it into .cache/jaeger/bin;",
    "  - set JAEGER_BIN to the path of a Jaeger v2 `jaeger` binary",
    "    (https://www.jaegertracing.io/download/).",
  ].join("\n"),
  logPrefix: "jaeger_bin",
};

/** One build shared by all concurrent callers in this process. */
let building: Promise<void> | undefined;

/**
 * Returns the absolute path of the Jaeger v2 binary: `JAEGER_BIN`, else the
 * build cache `.cache/jaeger/bin/`, else it builds it there with `go`. PATH
 * is not searched: a `jaeger` there may well be a v1 binary, which takes
 * other flags.
 *
 * @example
 * ```ts
 * const jaeger = await jaegerBin();
 * await new Deno.Command(jaeger, { args: ["--help"] }).output();
 * ```
 *
 * @throws {Error} when it is nowhere and `go` is not on `PATH`; or when
 * `JAEGER_BIN` names no executable file.
 */
export async function jaegerBin(): Promise<string> {
  const fromEnv = Deno.env.get("JAEGER_BIN");
  if (fromEnv) {
    const path = resolve(fromEnv);
    if (!(await isExecutableFile(path))) {
      throw new Error(
        `Cannot use JAEGER_BIN as it names no executable file: current value is "${path}"`,
      );
    }
    return path;
  }
  const cached = join(JAEGER_CACHE_BIN_DIR, "jaeger" + EXE_SUFFIX);
  if (await isExecutableFile(cached)) return cached;
  building ??= buildGoTools(JAEGER_TOOLS).catch((error) => {
    // Forget the failure so that a later call (e.g. after installing Go) tries again.
    building = undefined;
    throw error;
  });
  await building;
  return cached;
}

if (import.meta.main) {
  try {
    console.log(`jaeger\t${await jaegerBin()}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
