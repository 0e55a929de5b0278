/**
 * `deno task dev`: runs config.yaml with human-readable logs, restarting the
 * daemon when `src/` or `workers/` change and reloading it when the config
 * changes. When the config's nsqd or nsqlookupd are on loopback and do not
 * answer, it starts them first (data under .cache/dev/, warnings only, their
 * lines prefixed) and stops them after the daemon, so a fresh checkout needs
 * only this one command. The configured topics and channels are created on
 * that nsqd before the daemon starts, so the first message is handled at once.
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
import { formatHostPort } from "../src/config/address.ts";
import { loadConfig } from "../src/config/load.ts";
import type { Config, HostPort } from "../src/config/types.ts";
import { nsqBin } from "./nsq_bin.ts";
import { errorText } from "../src/error_text.ts";

const ROOT = new URL("../", import.meta.url);
const DATA_DIR = new URL(".cache/dev/", ROOT);
/** Changes here restart the daemon. */
const CODE_DIRS = [new URL("src/", ROOT).pathname, new URL("workers/", ROOT).pathname];
/** Editors write in bursts: changes within this long restart the daemon once. */
const DEBOUNCE_MS = 200;
/** How often the daemon asks nsqlookupd in dev, so new topics are found quickly. */
const DEV_LOOKUPD_POLL = "1s";
const START_TIMEOUT_MS = 10_000;

/** Permissions of the daemon under development: the binary's, with reading and writing anywhere. */
const DAEMON_PERMISSIONS = [
  "--no-prompt",
  "--allow-net",
  "--allow-env",
  "--allow-sys=hostname",
  "--allow-read",
  "--allow-write", // a sqlite: dedupe store, wherever the dev config puts it
];

/** Options of {@linkcode runDev}. */
export interface DevOptions {
  /** The daemon's entry point; default `main.ts` (tests run their own workers). */
  readonly main?: URL;
}

/**
 * Runs the dev loop with the command line `args` until Ctrl-C or SIGTERM and
 * returns the exit code: the daemon's last one, 2 for a config that does not
 * load, 1 when NSQ could not be started.
 */
export async function runDev(args: readonly string[], options: DevOptions = {}): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { config: { type: "string", short: "c", default: "config.yaml" } },
  });
  const configPath = values.config;
  let config: Config;
  try {
    config = await loadConfig(configPath);
  } catch (error) {
    console.error(errorText(error));
    return 2;
  }
  using stop = new StopRequest();
  const nsq = new LocalNsq();
  try {
    await nsq.start(config);
    if (stop.requested) return 130; // Ctrl-C while NSQ was starting
    return await superviseDaemon(configPath, options.main ?? new URL("main.ts", ROOT), stop);
  } catch (error) {
    console.error(`dev: ${errorText(error)}`);
    return 1;
  } finally {
    await nsq.stop();
  }
}

/**
 * Ctrl-C and SIGTERM, from the start: a signal while NSQ starts must still
 * stop what was started.
 *
 * The daemon stays in the terminal's process group, so Ctrl-C reaches it
 * once, from the terminal; `deno task` forwards that SIGINT to this process
 * as well, so passing it on would make a second signal of one Ctrl-C.
 * SIGTERM is sent to this process alone, so it is passed on.
 */
class StopRequest implements Disposable {
  requested = false;
  /** The daemon to pass SIGTERM on to, while one runs. */
  daemon: Deno.ChildProcess | null = null;
  #wake = Promise.withResolvers<void>();
  readonly #onSigint = () => this.#request();
  readonly #onSigterm = () => {
    this.#request();
    this.daemon?.kill("SIGTERM");
  };

  constructor() {
    Deno.addSignalListener("SIGINT", this.#onSigint);
    Deno.addSignalListener("SIGTERM", this.#onSigterm);
  }

  /** Resolves at the next stop request or {@linkcode StopRequest.wake}. */
  next(): Promise<void> {
    return this.#wake.promise;
  }

  /** Ends the current {@linkcode StopRequest.next} wait. */
  wake(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  #request(): void {
    this.requested = true;
    this.wake();
  }

  [Symbol.dispose](): void {
    Deno.removeSignalListener("SIGINT", this.#onSigint);
    Deno.removeSignalListener("SIGTERM", this.#onSigterm);
  }
}

/**
 * Runs the daemon until a stop request, restarting it when code changes (and,
 * after it exited by itself, once code changes). Returns its last exit code.
 */
async function superviseDaemon(configPath: string, main: URL, stop: StopRequest): Promise<number> {
  let restart = false;
  const watcher = watchCode((changed) => {
    console.error(`dev: ${changed} changed; restarting the daemon`);
    restart = true;
    stop.wake();
    stop.daemon?.kill("SIGTERM");
  });
  let code = 0;
  try {
    while (!stop.requested) {
      restart = false;
      const daemon = stop.daemon = spawnDaemon(configPath, main);
      code = (await daemon.status).code;
      stop.daemon = null;
      if (stop.requested || restart) continue;
      console.error(
        `dev: the daemon exited with code ${code}; it restarts when src/ or workers/ change ` +
          "(Ctrl-C stops)",
      );
      await stop.next();
    }
  } finally {
    watcher.close();
  }
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

/** Calls `onChange` with the changed file after a burst of changes under {@linkcode CODE_DIRS}. */
function watchCode(onChange: (changed: string) => void): Deno.FsWatcher {
  const watcher = Deno.watchFs(CODE_DIRS, { recursive: true });
  (async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      const changed = event.paths[0] ?? "a file";
      clearTimeout(timer);
      timer = setTimeout(() => onChange(changed.replace(ROOT.pathname, "")), DEBOUNCE_MS);
    }
    clearTimeout(timer);
  })();
  return watcher;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * Whether an NSQ HTTP endpoint answers `GET /ping`. HTTP, not the TCP port:
 * a TCP probe that sends no protocol magic makes nsqd log an error.
 */
export async function answersPing(httpUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${httpUrl}/ping`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

function httpUrl(address: HostPort): string {
  return `http://${formatHostPort(address)}`;
}

/** The nsqlookupd and nsqd that dev starts, when the config names them on loopback and they are down. */
class LocalNsq {
  #children: { name: string; child: Deno.ChildProcess; output: Promise<void> }[] = [];

  async start(config: Config): Promise<void> {
    const lookupd = config.nsq.lookupdHttpAddresses
      .map((url) => new URL(url))
      .map((url) => ({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) }))
      .find((address) => isLoopback(address.host));
    const nsqd = config.nsq.publishNsqdTcpAddress ?? config.nsq.nsqdTcpAddresses[0] ??
      { host: "127.0.0.1", port: 4150 };
    // By convention nsqlookupd's TCP port is its HTTP port − 1, and nsqd's HTTP port its TCP port + 1.
    const lookupdTcp = lookupd ? formatHostPort({ ...lookupd, port: lookupd.port - 1 }) : null;
    const nsqdHttp = httpUrl({ ...nsqd, port: nsqd.port + 1 });
    if (lookupd && !(await answersPing(httpUrl(lookupd)))) {
      await this.#spawn("nsqlookupd", httpUrl(lookupd), [
        `--http-address=${formatHostPort(lookupd)}`,
        `--tcp-address=${lookupdTcp}`,
      ]);
    }
    if (!isLoopback(nsqd.host)) return;
    if (!(await answersPing(nsqdHttp))) {
      const dataDir = new URL(`nsqd-${nsqd.port}/`, DATA_DIR);
      await Deno.mkdir(dataDir, { recursive: true });
      await this.#spawn("nsqd", nsqdHttp, [
        `--tcp-address=${formatHostPort(nsqd)}`,
        `--http-address=${formatHostPort({ ...nsqd, port: nsqd.port + 1 })}`,
        `--broadcast-address=${nsqd.host}`,
        `--data-path=${dataDir.pathname}`,
        ...(lookupdTcp ? [`--lookupd-tcp-address=${lookupdTcp}`] : []),
      ]);
    }
    await createTopics(nsqdHttp, config);
    const topic = config.workers[0]?.nsqTopic ?? "pageviews";
    console.error(
      `dev: publish a test message with\n` +
        `  curl -d '{"event_id":"e1","clicks":1}' '${nsqdHttp}/pub?topic=${topic}'`,
    );
  }

  /**
   * Starts `name` in a session of its own: Ctrl-C reaches the terminal's
   * process group, and NSQ must outlive the daemon's drain (its FINs go to
   * nsqd). Its output, warnings and errors only, is prefixed with its name.
   */
  async #spawn(name: "nsqd" | "nsqlookupd", url: string, args: string[]): Promise<void> {
    const child = new Deno.Command(await nsqBin(name), {
      args: ["--log-level=warn", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    const output = Promise.all([prefixLines(child.stdout, name), prefixLines(child.stderr, name)])
      .then(() => {});
    this.#children.push({ name, child, output });
    console.error(`dev: started ${name} (pid ${child.pid}) on ${url}`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    let exited = false;
    child.status.then(() => exited = true);
    while (!(await answersPing(url))) {
      if (exited) throw new Error(`${name} exited before answering ${url}/ping`);
      if (Date.now() > deadline) {
        throw new Error(`${name} did not answer ${url}/ping within ${START_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops what dev started, nsqd before nsqlookupd, and waits for each. */
  async stop(): Promise<void> {
    for (const { child, output } of this.#children.splice(0).reverse()) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await output;
    }
  }
}

/**
 * Creates each entry's topic and channel on the local nsqd, so that it
 * registers them with nsqlookupd before the daemon asks, and messages
 * published before the daemon subscribes wait in the channel. Ephemeral
 * ones would vanish without a consumer; they are left to the daemon.
 */
async function createTopics(nsqdHttp: string, config: Config): Promise<void> {
  for (const entry of config.workers) {
    if (entry.nsqTopic.endsWith("#ephemeral") || entry.channel.endsWith("#ephemeral")) continue;
    const topic = encodeURIComponent(entry.nsqTopic);
    const channel = encodeURIComponent(entry.channel);
    for (
      const path of [
        `topic/create?topic=${topic}`,
        `channel/create?topic=${topic}&channel=${channel}`,
      ]
    ) {
      const response = await fetch(`${nsqdHttp}/${path}`, { method: "POST" });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(`POST ${nsqdHttp}/${path} answered ${response.status}: ${text}`);
      }
    }
  }
}

/** Copies `stream` to stderr line by line, each line prefixed with `name`. */
async function prefixLines(stream: ReadableStream<Uint8Array>, name: string): Promise<void> {
  let partial = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) console.error(`${name} | ${line}`);
  }
  if (partial !== "") console.error(`${name} | ${partial}`);
}

if (import.meta.main) Deno.exit(await runDev(Deno.args));
