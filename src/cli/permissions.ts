/**
 * The Deno permissions the config commands need, checked before any is
 * used: a permission that is missing then makes one clear line and exit 2,
 * never a prompt (in a terminal) or "Requires env access" and exit 1
 * (outside one).
 *
 * @module
 */

/** Commands that read the config. */
export type ConfigCommand = "check" | "list" | "run" | "replay";

/** How to run each command with what it needs. */
const HOW_TO_RUN: Record<ConfigCommand, string> = {
  check: "`deno run --allow-read --allow-env main.ts check` or `deno task check`",
  list: "`deno run --allow-read --allow-env main.ts list`",
  run: "`deno run --allow-net --allow-read --allow-env --allow-sys=hostname main.ts run` " +
    "or `deno task dev`",
  replay: "`deno run --allow-net --allow-read --allow-env main.ts replay …` " +
    "or `deno task replay …`",
};

/**
 * The flags missing to read `configPath` and the environment (`${VAR}` may
 * name any variable), e.g. `["--allow-env"]`; none when both are granted.
 * Only queries: nothing prompts.
 */
export function missingConfigPermissions(configPath: string): string[] {
  const missing: string[] = [];
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  if (!granted({ name: "read", path: configPath })) missing.push("--allow-read");
  if (!granted({ name: "env" })) missing.push("--allow-env");
  return missing;
}

/** The one line that says what is missing and how to run `command` instead. */
export function permissionMessage(command: ConfigCommand, missing: string): string {
  return `nsqworker ${command}: missing permission ${missing}; run it as ${HOW_TO_RUN[command]}`;
}

/** Whether `error` is Deno refusing an operation for want of a permission. */
export function isPermissionError(error: unknown): error is Error {
  return error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
}
