/**
 * Tries what the compiled binary may and may not do, and prints one JSON
 * object: each attempt's name → `"allowed"` or `"denied"` (or `"failed: …"`
 * when it failed for another reason). Run with the binary's permission flags
 * (tools/compile.ts `permissionFlags()`), by `deno run` or compiled.
 *
 * Usage: permission_probe.ts CONFIG_DIR DATA_DIR OUTSIDE_DIR
 *
 * @module
 */

const [configDir, dataDir, outsideDir] = Deno.args;
if (!configDir || !dataDir || !outsideDir) {
  console.error("usage: permission_probe.ts CONFIG_DIR DATA_DIR OUTSIDE_DIR");
  Deno.exit(2);
}

const attempts: Record<string, () => unknown> = {
  read_config: () => Deno.readTextFileSync(`${configDir}/config.yaml`),
  write_store: () => Deno.writeTextFileSync(`${dataDir}/dedupe.db`, "x"),
  write_outside_store: () => Deno.writeTextFileSync(`${outsideDir}/escaped.txt`, "x"),
  write_config: () => Deno.writeTextFileSync(`${configDir}/config.yaml`, "x"),
  read_outside: () => Deno.readTextFileSync(`${outsideDir}/secret.txt`),
  run_subprocess: () => new Deno.Command("true").outputSync(),
  run_shell: () => new Deno.Command("sh", { args: ["-c", "echo pwned"] }).outputSync(),
  ffi: () => Deno.dlopen("libc.so.6", {}),
  env: () => Deno.env.get("HOME"),
  hostname: () => Deno.hostname(),
  os_release: () => Deno.osRelease(),
  listen: () => Deno.listen({ hostname: "127.0.0.1", port: 0 }).close(),
};

const results: Record<string, string> = {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    await attempt();
    results[name] = "allowed";
  } catch (error) {
    const denied = error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied;
    results[name] = denied ? "denied" : `failed: ${error instanceof Error ? error.message : error}`;
  }
}
console.log(JSON.stringify(results));
