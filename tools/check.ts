/**
 * `deno task check`: `nsqworker check`, then `deno check` of the worker
 * modules the config names. A worker that reads `body.amont` from a body its
 * schema types as `{ amount: number }` loads, has the right shape and runs,
 * so only the type checker finds it, and the compiled binary has none.
 *
 * Usage: deno task check [-c|--config FILE]
 *
 * Exit codes as nsqworker's: 0 when both pass (the `OK` line of
 * `nsqworker check` is printed only then), 2 for a config, worker or type
 * error (each at its `file:line:col`), 1 when deno cannot be run.
 *
 * @module
 */

import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type CliOutput, main, STDIO } from "../src/cli/cli.ts";
import { loadConfig } from "../src/config/load.ts";
import { errorText } from "../src/error_text.ts";
import { isPermissionError } from "../src/cli/permissions.ts";
import { WORKERS_DIR } from "../src/worker/worker_loader.ts";

/** The project's deno.json: its compiler options and import map are the workers' too. */
const DENO_JSON = new URL("../deno.json", import.meta.url);

const USAGE = "Usage: deno task check [-c|--config FILE]  (default FILE: config.yaml)\n";

/** Options of {@linkcode runCheck}. */
export interface CheckOptions {
  /** Where worker modules come from instead of `workers/` (tests only). */
  readonly workersDir?: URL;
}

/** Runs the checks with the command line `args` and returns the exit code. */
export async function runCheck(
  args: readonly string[],
  output: CliOutput = STDIO,
  options: CheckOptions = {},
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      strict: true,
      options: {
        config: { type: "string", short: "c", default: "config.yaml" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    output.err(`deno task check: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  const workersDir = options.workersDir ?? WORKERS_DIR;
  let verdict = "";
  const code = await main(
    ["check", "-c", values.config],
    { out: (text) => verdict += text, err: output.err },
    { workersDir },
  );
  if (code !== 0) return code;
  // Read again for the names only: `check` above has already accepted it.
  const config = await loadConfig(values.config);
  const names = [...new Set(config.workers.map((entry) => entry.worker))];
  const files = names.map((name) => fileURLToPath(new URL(`${name}.ts`, workersDir)));
  const typeCode = files.length === 0 ? 0 : await typeCheck(files, workersDir, output);
  if (typeCode === 0) output.out(verdict);
  return typeCode;
}

/** `deno check` of `files`; prints each error as `file:line:col: message`. */
async function typeCheck(files: string[], workersDir: URL, output: CliOutput): Promise<number> {
  let result;
  try {
    result = await new Deno.Command("deno", {
      args: ["check", "--quiet", "--config", fileURLToPath(DENO_JSON), ...files],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (isPermissionError(error)) {
      output.err(
        "deno task check: missing permission --allow-run=deno to type-check the workers; " +
          "run it as `deno task check`\n",
      );
      return 2;
    }
    output.err(`deno task check: cannot run deno to type-check the workers: ${errorText(error)}\n`);
    return 1;
  }
  if (result.code === 0) return 0;
  const decoder = new TextDecoder();
  const text = decoder.decode(result.stdout) + decoder.decode(result.stderr);
  const errors = typeErrors(text, (url) => displayPath(url, workersDir));
  output.err(
    errors.length > 0
      ? errors.map((line) => `${line}\n`).join("")
      // Not in the form below (deno's own words changed?): all of it, rather than nothing.
      : `deno check of the workers failed:\n${text.trimEnd()}\n`,
  );
  return 2;
}

/** A diagnostic's first line: `TS2339 [ERROR]: message`, or `error: message` (resolution). */
const HEADLINE = /^(?:TS\d+ \[ERROR\]|error): (.+)$/;
/** Where it is, a few lines below: `    at file:///…/order.ts:7:42`. */
const PLACE = /^\s+at (file:\/\/\S+):(\d+):(\d+)$/;
/** What deno says after the diagnostics, in the form of one. */
const SUMMARY = /^Type checking failed\.$/;

/**
 * The diagnostics of `deno check`'s output, one line each: `file:line:col:
 * message` (the message's first line), or the message alone when deno gives
 * no place.
 */
function typeErrors(text: string, display: (url: URL) => string): string[] {
  const errors: { message: string; place: string | null }[] = [];
  for (const line of text.split("\n")) {
    const headline = HEADLINE.exec(line);
    if (headline !== null && !SUMMARY.test(headline[1]!)) {
      errors.push({ message: headline[1]!, place: null });
      continue;
    }
    const place = PLACE.exec(line);
    const last = errors.at(-1);
    if (place !== null && last !== undefined && last.place === null) {
      last.place = `${display(new URL(place[1]!))}:${place[2]}:${place[3]}`;
    }
  }
  return errors.map(({ message, place }) => place === null ? message : `${place}: ${message}`);
}

/** `workers/a/b.ts` as in nsqworker's own messages; other files relative to here if inside. */
function displayPath(url: URL, workersDir: URL): string {
  const path = fileURLToPath(url);
  if (url.href.startsWith(workersDir.href)) {
    return `workers/${relative(fileURLToPath(workersDir), path)}`;
  }
  const fromHere = relative(Deno.cwd(), path);
  return fromHere.startsWith("..") ? path : fromHere;
}

if (import.meta.main) Deno.exit(await runCheck(Deno.args));
