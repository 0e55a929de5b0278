/**
 * `nsqworker replay …`: the flags, the config, the run and its summary.
 *
 * @module
 */

import type { CliOutput } from "./cli_output.ts";
import { ConfigError } from "../config/config_error.ts";
import { loadConfig } from "../config/load.ts";
import { errorText } from "../error_text.ts";
import { isPermissionError, missingConfigPermissions, permissionMessage } from "./permissions.ts";
import { MissingPermissionError } from "../replay/net_access.ts";
import { replay, type ReplayTimings } from "../replay/replay.ts";
import { parseReplayArgs, ReplayUsageError } from "../replay/replay_args.ts";
import { formatSummary } from "../replay/replay_tally.ts";

/**
 * Runs `replay` with `args` (after the word `replay`); returns the exit code:
 * 0 done, 1 a publish failed or not every dead letter was seen, 2 bad flags,
 * config or permissions. `--show` writes its JSON lines to `output.out`, the
 * summary to `output.err`.
 */
export async function replayCommand(
  args: readonly string[],
  output: CliOutput,
  progressLine: boolean,
  timings: Partial<ReplayTimings> = {},
): Promise<number> {
  try {
    const options = parseReplayArgs(args);
    const missing = missingConfigPermissions(options.configPath);
    if (missing.length > 0) {
      output.err(`${permissionMessage("replay", missing.join(" "))}\n`);
      return 2;
    }
    const config = await loadConfig(options.configPath);
    let shown = false;
    const result = await replay(config, options, {
      warn: (text) => output.err(`${shown ? "\r\x1b[K" : ""}nsqworker replay: ${text}\n`),
      progress: progressLine
        ? (line) => {
          shown = true;
          output.err(`\r\x1b[K${line}`);
        }
        : null,
      show: (line) => output.out(`${line}\n`),
    }, timings);
    if (shown) output.err("\r\x1b[K");
    for (const error of result.errors) output.err(`nsqworker replay: ${error}\n`);
    const summary = formatSummary(result.tally, options.mode, result.left);
    // --show keeps stdout to its JSON lines.
    if (options.mode === "show") output.err(summary);
    else output.out(summary);
    return result.tally.failed > 0 || result.errors.length > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      output.err(`${error.message}\n`);
      return 2;
    }
    if (error instanceof ReplayUsageError) {
      output.err(`nsqworker: ${error.message}\n\nRun nsqworker --help for usage.\n`);
      return 2;
    }
    if (error instanceof MissingPermissionError) {
      output.err(`${permissionMessage("replay", `${error.flag} (to reach ${error.target})`)}\n`);
      return 2;
    }
    // A permission the config needs (a TLS file, say) beyond those checked above.
    if (isPermissionError(error)) {
      output.err(`nsqworker replay: ${error.message.split("\n")[0]}\n`);
      return 2;
    }
    output.err(`nsqworker replay: ${errorText(error)}\n`);
    return 1;
  }
}
