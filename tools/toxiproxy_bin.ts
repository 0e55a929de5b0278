/**
 * Locates Toxiproxy's server (v2.12.0), the TCP fault proxy the reliability
 * tests put between the daemon and nsqd, nsqlookupd or redis, building it with
 * `go` from the module in `tools/toxiproxy/` when it is nowhere to be found.
 *
 * Run it as a script to locate (or build) it up front and print its path:
 *
 * ```sh
 * deno run -A tools/toxiproxy_bin.ts
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type GoTools, locateGoTool } from "./go_build.ts";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

const TOXIPROXY: GoTools<"toxiproxy-server"> = {
  label: "Toxiproxy v2.12.0",
  moduleDir: join(REPO_ROOT, "tools", "toxiproxy"),
  cacheDir: join(REPO_ROOT, ".cache", "toxiproxy"),
  // As in the `tool` directive of `tools/toxiproxy/go.mod`.
  packages: { "toxiproxy-server": "github.com/Shopify/toxiproxy/v2/cmd/server" },
  howTo: [
    "To get Toxiproxy v2.12.0, do one of:",
    "  - install Go 1.24 or newer (https://go.dev/dl/) and rerun: tools/toxiproxy_bin.ts then",
    "    builds toxiproxy-server into .cache/toxiproxy/bin;",
    "  - set TOXIPROXY_SERVER_BIN to the path of a toxiproxy-server binary;",
    "  - put toxiproxy-server on PATH (https://github.com/Shopify/toxiproxy/releases).",
  ].join("\n"),
};

/** One build shared by all concurrent callers in this process. */
const building: { current?: Promise<void> | undefined } = {};

/**
 * Returns the absolute path of `toxiproxy-server`: `TOXIPROXY_SERVER_BIN`,
 * else `.cache/toxiproxy/bin/`, else `PATH`; otherwise it builds it with `go`.
 *
 * @throws {Error} when it is nowhere and `go` is not on `PATH`, with
 * instructions for getting it.
 */
export function toxiproxyBin(): Promise<string> {
  return locateGoTool(TOXIPROXY, "toxiproxy-server", building);
}

if (import.meta.main) {
  try {
    console.log(`toxiproxy-server\t${await toxiproxyBin()}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
