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
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type GoTools, locateGoTool } from "./go_build.ts";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

const JAEGER: GoTools<"jaeger"> = {
  label: "Jaeger v2 (module v1.76.0)",
  moduleDir: join(REPO_ROOT, "tools", "jaeger"),
  cacheDir: join(REPO_ROOT, ".cache", "jaeger"),
  // As in the `tool` directive of `tools/jaeger/go.mod`.
  packages: { jaeger: "github.com/jaegertracing/jaeger/cmd/jaeger" },
  howTo: [
    "To get Jaeger, do one of:",
    "  - install Go 1.24 or newer (https://go.dev/dl/) and rerun: tools/jaeger_bin.ts then",
    "    builds it into .cache/jaeger/bin;",
    "  - set JAEGER_BIN to the path of a Jaeger v2 `jaeger` binary",
    "    (https://www.jaegertracing.io/download/); a v1 binary takes other flags.",
  ].join("\n"),
};

/** One build shared by all concurrent callers in this process. */
const building: { current?: Promise<void> | undefined } = {};

/**
 * Returns the absolute path of the Jaeger v2 binary: `JAEGER_BIN`, else the
 * build cache `.cache/jaeger/bin/`, else `PATH`; otherwise it builds it with `go`.
 *
 * @throws {Error} when it is nowhere and `go` is not on `PATH`, with
 * instructions for getting it.
 */
export function jaegerBin(): Promise<string> {
  return locateGoTool(JAEGER, "jaeger", building);
}

if (import.meta.main) {
  try {
    console.log(`jaeger\t${await jaegerBin()}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
