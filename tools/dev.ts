/**
 * `deno task dev`: runs config.yaml with human-readable logs, restarting the
 * daemon when `src/` or `workers/` change and reloading it when the config
 * changes. First it runs the whole check (`nsqworker check`: the config and
 * every worker); until that passes nothing is started, and each change to
 * the config, `src/` or `workers/` runs it again. When the config's nsqd or
 * nsqlookupd are on loopback and nothing listens there, it starts them (data
 * under .cache/dev/, warnings only, their lines prefixed) and stops them
 * after the daemon, so a fresh checkout needs only this one command. The
 * configured topics and channels are created on that nsqd before the daemon
 * starts, so the first message is handled at once. An address taken by a
 * program that is not the NSQ daemon expected there ends dev with one line.
 *
 * Ctrl-C drains like SIGTERM; a second Ctrl-C exits at once. The daemon is
 * this process's own child, not `deno run --watch`'s: a watcher sends its
 * child SIGTERM right after the terminal's SIGINT, which the daemon would
 * take as the second signal.
 *
 * Usage: deno task dev [-c config.yaml]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "../src/config/load.ts";
import { errorText } from "../src/error_text.ts";
import { Changes } from "./dev/changes.ts";
import { LocalNsq } from "./dev/local_nsq.ts";
import { StopRequest } from "./dev/stop_request.ts";

const ROOT = new URL("../", import.meta.url);
/** How often the daemon asks nsqlookupd in dev, so new topics are found quickly. */
const DEV_LOOKUPD_POLL = "1s";

/** Permissions of `nsqworker check`, as `deno task check` grants them. */
const CHECK_PERMISSIONS = ["--no-prompt", "--allow-read", "--allow-env"];

/** Permissions of the daemon under development: the binary's, with reading and writing anywhere. */
const DAEMON_PERMISSIONS = [
  "--no-prompt",
  "--allow-net",
  "--allow-env",
  "--allow-sys=hostname",
  "--allow-read",
  "--allow-write", // a sqlite: dedupe store, wherever the dev config puts it
  `--allow-run=${Deno.execPath()}`, // deno again: the children of entries with `processes`
];

/** Options of {@linkcode runDev}. */
export interface DevOptions {
  /** The daemon's entry point; default `main.ts` (tests run their own workers). */
  readonly main?: URL;
}

/**
 * Runs the dev loop with the command line `args` until Ctrl-C or SIGTERM and
 * returns the exit code: the daemon's last one, the check's (2) when it never
 * passed, 1 when NSQ could not be started.
 */
export async function runDev(args: readonly string[], options: DevOptions = {}): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: "string", short: "c", default: "config.yaml" } },
  });
  const configPath = values.config;
  const main = options.main ?? new URL("main.ts", ROOT);
  using stop = new StopRequest();
  using changes = new Changes(configPath, stop, ROOT);
  const nsq = new LocalNsq(new URL(".cache/dev/", ROOT));
  try {
    return await develop(configPath, main, stop, changes, nsq);
  } catch (error) {
    console.error(`dev: ${errorText(error)}`);
    return 1;
  } finally {
    await nsq.stop();
  }
}

/**
 * The loop: check, start NSQ once the check passes, run the daemon; after a
 * failed check or a daemon that exited by itself, wait for a change.
 */
async function develop(
  configPath: string,
  main: URL,
  stop: StopRequest,
  changes: Changes,
  nsq: LocalNsq,
): Promise<number> {
  const watched = `${configPath}, src/ or workers/`;
  let code = 0;
  while (!stop.requested) {
    changes.clear();
    if (!nsq.ready) {
      code = await check(configPath, main);
      if (stop.requested) break;
      if (code === 0) {
        await nsq.start(await loadConfig(configPath));
        if (stop.requested) return 130; // Ctrl-C while NSQ was starting
      }
    }
    if (nsq.ready) {
      changes.clear();
      const daemon = stop.daemon = spawnDaemon(configPath, main);
      code = (await daemon.status).code;
      stop.daemon = null;
      if (stop.requested) break;
      if (changes.pending !== null) continue; // restarted for a code change
      console.error(
        `dev: the daemon exited with code ${code}; it starts again when ${watched} change ` +
          "(Ctrl-C stops)",
      );
    } else {
      console.error(
        `dev: nothing started; the check runs again when ${watched} change (Ctrl-C stops)`,
      );
    }
    const changed = await changes.next();
    if (changed === null) break;
    console.error(`dev: ${changed} changed`);
  }
  return code;
}

/** `nsqworker check` on the config, in a process of its own: workers load fresh each time. */
async function check(configPath: string, main: URL): Promise<number> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...CHECK_PERMISSIONS, main.pathname, "check", "-c", configPath],
    stdin: "null",
  }).spawn().status;
  return code;
}

function spawnDaemon(configPath: string, main: URL): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...DAEMON_PERMISSIONS,
      main.pathname,
      "run",
      "-c",
      configPath,
      "--pretty",
      "--reload-on-change",
      `--lookupd-poll-interval=${DEV_LOOKUPD_POLL}`,
    ],
    stdin: "null",
  }).spawn();
}

if (import.meta.main) Deno.exit(await runDev(Deno.args));
