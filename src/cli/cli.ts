/**
 * The command line: `run`, `check`, `list`, `replay`, `schema`, `version`, `--help`.
 * Exit codes: 0 done, 2 bad usage or configuration, 1 runtime failure.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "../config/config_error.ts";
import { formatDuration, parseDuration } from "../config/duration.ts";
import { loadConfig, readConfigDraft } from "../config/load.ts";
import { formatMemorySize } from "../config/value_kinds.ts";
import type { Config, Entry } from "../config/types.ts";
import { NSQJS_VERSION } from "../nsq/nsqjs.ts";
import { replayCommand } from "./replay_command.ts";
import { runCommand } from "./run_command.ts";
import { childCommand } from "./child_command.ts";
import { configJsonSchema } from "../config/json_schema.ts";
import { isPermissionError, missingConfigPermissions, permissionMessage } from "./permissions.ts";
import { VERSION } from "../version.ts";
import { prepare } from "../daemon/prepare.ts";
import { moduleSource } from "../worker/worker_loader.ts";
import { errorText } from "../error_text.ts";
import type { CliOutput } from "./cli_output.ts";

export { type CliOutput, STDIO } from "./cli_output.ts";
import { STDIO } from "./cli_output.ts";

const USAGE = `nsqworker ${VERSION} — a worker daemon for NSQ

Usage:
  nsqworker [run] [-c|--config FILE] [--pretty] [--log-level LEVEL] [--reload-on-change]
                  [--lookupd-poll-interval DURATION]
                                      run the daemon (default FILE: ./config.yaml)
  nsqworker check [-c FILE]           validate the config and load every worker
  nsqworker list  [-c FILE]           print the entries and their settings
  nsqworker replay --from TOPIC.dead [--to TOPIC] [--channel NAME] [--reason R] [--worker W]
                   [--match TEXT] [--limit N] [--rate N/s] [--dry-run | --show] [-c FILE]
                                      publish dead letters' bodies again (channel default: replay);
                                      --dry-run counts them, --show prints them as JSON lines
  nsqworker schema                    print the JSON Schema of config.yaml
  nsqworker version                   print the versions (also --version, -V)
  nsqworker --help                    print this help (also -h, help)

Options:
  -c, --config FILE     the config file (default: config.yaml)
      --pretty          human-readable logs instead of JSON lines
      --log-level LEVEL debug | info | warning | error (overrides log.level)
      --reload-on-change
                        reload when the config file changes (SIGHUP always reloads)
      --lookupd-poll-interval DURATION
                        overrides nsq.lookupd_poll_interval (deno task dev: 1s)

Exit codes: 0 done (a graceful shutdown too), 2 bad usage or configuration,
1 runtime failure; killed by SIGKILL (137 in a shell) when the daemon's thread
did not turn for stall_timeout (one fatal line on stderr says what it ran).
`;

const COMMANDS = ["run", "check", "list", "version", "help"] as const;
type Command = typeof COMMANDS[number];
const LEVELS = ["debug", "info", "warning", "error"] as const;

class UsageError extends Error {}

/** Settings the command line cannot reach: only tests use them. */
export interface CliOverrides {
  /** Where worker modules come from instead of `workers/`. */
  readonly workersDir?: URL;
}

/** Runs the CLI with `args` (without the program name) and returns the exit code. */
export async function main(
  args: readonly string[],
  output: CliOutput,
  overrides: CliOverrides = {},
): Promise<number> {
  // These two take flags of their own.
  if (args[0] === "replay") {
    return replayCommand(args.slice(1), output, output === STDIO && Deno.stderr.isTerminal());
  }
  if (args[0] === "child" && args.length === 1) {
    return await childCommand(output, overrides.workersDir);
  }
  if (args[0] === "schema" && args.length === 1) {
    output.out(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  let parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    output.err(`nsqworker: ${(error as Error).message}\n\nRun nsqworker --help for usage.\n`);
    return 2;
  }
  const { command, configPath, pretty, logLevel, reloadOnChange, lookupdPollMs } = parsed;
  const configCommand = command === "check" || command === "list" || command === "run"
    ? command
    : null;
  if (configCommand !== null) {
    const missing = missingConfigPermissions(configPath);
    if (missing.length > 0) {
      output.err(`${permissionMessage(configCommand, missing.join(" "))}\n`);
      return 2;
    }
  }
  try {
    switch (command) {
      case "help":
        output.out(USAGE);
        return 0;
      case "version":
        output.out(`nsqworker ${VERSION}\ndeno ${Deno.version.deno}\nnsqjs ${NSQJS_VERSION}\n`);
        return 0;
      case "check": {
        const { config, workers } = await prepare(await readConfigDraft(configPath), {
          workers: moduleSource(overrides.workersDir),
        });
        const names = [...new Set(workers.map((w) => w.name))].join(", ");
        output.out(
          `${configPath}: OK: ${config.workers.length} ${
            config.workers.length === 1 ? "entry" : "entries"
          }, workers: ${names}\n`,
        );
        return 0;
      }
      case "list": {
        const config = await loadConfig(configPath);
        output.out(formatEntries(config));
        return 0;
      }
      case "run":
        await runCommand({
          configPath,
          ...(overrides.workersDir ? { workersDir: overrides.workersDir } : {}),
          reloadOnChange,
          ...(lookupdPollMs === null ? {} : { timings: { lookupdPollIntervalMs: lookupdPollMs } }),
          log: {
            ...(pretty ? { format: "pretty" as const } : {}),
            ...(logLevel ? { level: logLevel } : {}),
          },
        });
        return 0;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      output.err(`${error.message}\n`);
      return 2;
    }
    // A permission the config needs (a TLS file, say) beyond those checked above.
    if (configCommand !== null && isPermissionError(error)) {
      output.err(`nsqworker ${configCommand}: ${error.message.split("\n")[0]}\n`);
      return 2;
    }
    output.err(`nsqworker: ${errorText(error)}\n`);
    return 1;
  }
}

/** The flags of every command but `replay` and `schema`; `--help` names each. */
export const CLI_FLAGS = {
  config: { type: "string", short: "c", default: "config.yaml" },
  pretty: { type: "boolean", default: false },
  "reload-on-change": { type: "boolean", default: false },
  "log-level": { type: "string" },
  "lookupd-poll-interval": { type: "string" },
  help: { type: "boolean", short: "h", default: false },
  version: { type: "boolean", short: "V", default: false },
} as const;

function parse(args: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: CLI_FLAGS,
  });
  if (positionals.length > 1) {
    throw new UsageError(`expected one command, got ${positionals.join(" ")}`);
  }
  const word = positionals[0] ?? "run";
  if (word === "replay" || word === "schema") {
    throw new UsageError(
      word === "schema"
        ? "schema takes no arguments"
        : "replay must come first: nsqworker replay …",
    );
  }
  if (!(COMMANDS as readonly string[]).includes(word)) {
    throw new UsageError(
      `unknown command ${JSON.stringify(word)}; expected one of ${COMMANDS.join(", ")}`,
    );
  }
  let command = word as Command;
  if (values.help) command = "help";
  else if (values.version) command = "version";
  const logLevel = values["log-level"];
  if (logLevel !== undefined && !(LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(
      `--log-level must be one of ${LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`,
    );
  }
  const poll = values["lookupd-poll-interval"];
  const lookupdPollMs = poll === undefined ? null : parseDuration(poll);
  if (poll !== undefined && (lookupdPollMs === null || lookupdPollMs < 1000)) {
    throw new UsageError(
      `--lookupd-poll-interval must be a duration of 1s or more, got ${JSON.stringify(poll)}`,
    );
  }
  return {
    command,
    configPath: values.config,
    lookupdPollMs,
    pretty: values.pretty,
    reloadOnChange: values["reload-on-change"],
    logLevel: logLevel as typeof LEVELS[number] | undefined,
  };
}

/** One block per entry; secrets are never part of an entry, so nothing here needs hiding. */
function formatEntries(config: Config): string {
  const lines: string[] = [];
  for (const entry of config.workers) lines.push(...describeEntry(entry), "");
  return lines.join("\n");
}

function describeEntry(entry: Entry): string[] {
  const rate = entry.rateLimit === null
    ? "none"
    : `${entry.rateLimit.count} per ${formatDuration(entry.rateLimit.perMs)}${
      entry.rateLimit.shared ? ", shared by every process (redis)" : ""
    }`;
  const breaker = entry.breaker === null
    ? "none"
    : `opens at ${entry.breaker.failureRate * 100}% of at least ${entry.breaker.minRuns} runs ` +
      `failed in ${formatDuration(entry.breaker.windowMs)}, for ${
        formatDuration(entry.breaker.openForMs)
      }`;
  return [
    `${entry.nsqTopic}/${entry.channel} → ${entry.worker}`,
    `  max_in_flight      ${entry.maxInFlight}`,
    `  max_attempts       ${entry.maxAttempts}`,
    `  requeue_delay      ${formatDuration(entry.requeueDelayMs)}`,
    `  max_requeue_delay  ${formatDuration(entry.maxRequeueDelayMs)}`,
    `  timeout            ${formatDuration(entry.timeoutMs)}`,
    `  dead_letter_topic  ${entry.deadLetterTopic ?? "none (log and count only)"}`,
    `  rate_limit         ${rate}`,
    ...(entry.processes === 0 ? [] : [
      `  processes          ${entry.processes} (kill_grace ${formatDuration(entry.killGraceMs)}, ` +
      `memory_limit ${
        entry.memoryLimitMib === null ? "none" : formatMemorySize(entry.memoryLimitMib)
      })`,
    ]),
    `  breaker            ${breaker}`,
    `  key_concurrency    ${entry.keyConcurrency ?? "none"}`,
    `  options            ${JSON.stringify(entry.options)}`,
  ];
}
