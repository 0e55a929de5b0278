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

import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatHostPort, isLoopbackHost } from "../src/config/address.ts";
import { loadConfig } from "../src/config/load.ts";
import type { Config, HostPort } from "../src/config/types.ts";
import { configuredNsqdHttp, nsqdHttpAddress } from "../src/nsq/nsqd_http_address.ts";
import { nsqBin } from "./nsq_bin.ts";
import { canListen, PROBE_TIMEOUT_MS, probeNsqd, probeNsqlookupd } from "./nsq_probe.ts";
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
  using changes = new Changes(configPath, stop);
  const nsq = new LocalNsq();
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

/**
 * Changes to the code (`src/`, `workers/`) and to the config file, for the
 * loop to wait on. A code change restarts a running daemon; a config change
 * is left to the daemon while one runs (it reloads the file), and otherwise
 * starts the check again.
 */
class Changes implements Disposable {
  /** The change not yet acted on, by path; null: none. */
  pending: string | null = null;
  readonly #stop: StopRequest;
  readonly #watchers: Deno.FsWatcher[];

  constructor(configPath: string, stop: StopRequest) {
    this.#stop = stop;
    const config = resolve(configPath);
    const code = Deno.watchFs(CODE_DIRS, { recursive: true });
    // The config's folder, not the file: editors that save by renaming replace the file watched.
    const folder = Deno.watchFs(dirname(config), { recursive: false });
    this.#watchers = [code, folder];
    this.#read(code, () => true, (path) => path.replace(ROOT.pathname, ""), true);
    this.#read(folder, (path) => path === config, () => configPath, false);
  }

  /** Forgets the changes so far. */
  clear(): void {
    this.pending = null;
  }

  /** Waits for a change; resolves with its path, or null at a stop request. */
  async next(): Promise<string | null> {
    while (this.pending === null && !this.#stop.requested) await this.#stop.next();
    return this.#stop.requested ? null : this.pending;
  }

  async #read(
    watcher: Deno.FsWatcher,
    wanted: (path: string) => boolean,
    shown: (path: string) => string,
    isCode: boolean,
  ): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      const path = event.paths.find(wanted);
      if (path === undefined) continue;
      // Editors write in bursts: act once, after the last.
      clearTimeout(timer);
      timer = setTimeout(() => this.#changed(shown(path), isCode), DEBOUNCE_MS);
    }
    clearTimeout(timer);
  }

  #changed(path: string, isCode: boolean): void {
    const daemon = this.#stop.daemon;
    if (daemon !== null) {
      if (!isCode) return; // the daemon runs with --reload-on-change
      console.error(`dev: ${path} changed; restarting the daemon`);
      this.pending = path;
      try {
        daemon.kill("SIGTERM");
      } catch {
        // It has just exited; the loop sees the change.
      }
      return;
    }
    this.pending = path;
    this.#stop.wake();
  }

  [Symbol.dispose](): void {
    for (const watcher of this.#watchers) watcher.close();
  }
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

/** The host (IPv6 without brackets) and port of an HTTP base URL. */
function hostPortOf(url: string): HostPort {
  const { hostname, port, protocol } = new URL(url);
  return {
    host: hostname.replace(/^\[|\]$/g, ""),
    port: Number(port || (protocol === "https:" ? 443 : 80)),
  };
}

/**
 * nsqlookupd's "client(…) - EOF": nsqlookupd 1.3 logs every nsqd that
 * disconnects as an error, even one that leaves as it should. When dev
 * stops its own nsqd, that line only repeats what dev did.
 */
const NSQD_LEFT = /ERROR: client\([^)]*\) - EOF$/;

/** The nsqlookupd and nsqd that dev starts, when the config names them on loopback and they are down. */
class LocalNsq {
  /** Whether NSQ is up: started by dev or found running. */
  ready = false;
  #children: { name: string; child: Deno.ChildProcess; output: Promise<void> }[] = [];
  #stopping = false;

  async start(config: Config): Promise<void> {
    const lookupd = config.nsq.lookupdHttpAddresses.find((url) =>
      isLoopbackHost(hostPortOf(url).host)
    );
    const nsqd = config.nsq.publishNsqdTcpAddress ?? config.nsq.nsqdTcpAddresses[0] ??
      { host: "127.0.0.1", port: 4150 };
    const lookupdTcp = lookupd === undefined ? null : await this.#startNsqlookupd(lookupd);
    if (isLoopbackHost(nsqd.host)) {
      const http = await this.#startNsqd(config, nsqd, lookupdTcp);
      if (http !== null) {
        await createTopics(http, config);
        printHint(config, http);
      }
    }
    this.ready = true;
  }

  /**
   * Starts nsqlookupd at `url` unless one answers there, and returns the TCP
   * address nsqd registers at. nsqlookupd does not tell its TCP port, so it
   * is taken to be the HTTP port − 1, where dev starts its own.
   */
  async #startNsqlookupd(url: string): Promise<string> {
    const http = hostPortOf(url);
    const tcp = { ...http, port: http.port - 1 };
    const found = await probeNsqlookupd(url, http);
    if (found === "other") {
      throw new Error(
        `${formatHostPort(http)} (nsq.lookupd_http_addresses) is taken by something that is not ` +
          `nsqlookupd: it did not answer GET /nodes within ${PROBE_TIMEOUT_MS} ms`,
      );
    }
    if (found === "nothing") {
      if (!canListen(tcp)) {
        throw new Error(
          `${formatHostPort(tcp)}, where dev would start nsqlookupd's TCP port (its HTTP port ` +
            `${http.port} − 1), is taken by another program`,
        );
      }
      await this.#spawn("nsqlookupd", url, [
        `--http-address=${formatHostPort(http)}`,
        `--tcp-address=${formatHostPort(tcp)}`,
      ]);
    }
    return formatHostPort(tcp);
  }

  /**
   * Starts nsqd at `tcp` unless one answers there, and returns its HTTP base
   * URL; null when a running nsqd's is unknown (said in one line).
   */
  async #startNsqd(
    config: Config,
    tcp: HostPort,
    lookupdTcp: string | null,
  ): Promise<string | null> {
    const found = await probeNsqd(tcp);
    if (found === "other") {
      throw new Error(
        `${formatHostPort(tcp)} (the config's nsqd) is taken by something that is not nsqd: it ` +
          `did not answer NSQ's IDENTIFY within ${PROBE_TIMEOUT_MS} ms`,
      );
    }
    if (found === "nsqd") {
      const http = await nsqdHttpAddress(config.nsq, tcp);
      if (http.url !== null) return http.url;
      console.error(
        `dev: nsqd runs at ${formatHostPort(tcp)}, but ${http.why}: ` +
          "topics are not created ahead",
      );
      return null;
    }
    // dev's own nsqd: its HTTP address is the configured one, else its TCP port + 1 (nsqd's pairing).
    const url = configuredNsqdHttp(config.nsq, tcp) ?? httpUrl({ ...tcp, port: tcp.port + 1 });
    const http = hostPortOf(url);
    if (!canListen(http)) {
      throw new Error(
        `${formatHostPort(http)}, where dev would start the HTTP API of nsqd ` +
          `${formatHostPort(tcp)}, is taken by another program: name a free one in ` +
          "nsq.nsqd_http_addresses",
      );
    }
    const dataDir = new URL(`nsqd-${tcp.port}/`, DATA_DIR);
    await Deno.mkdir(dataDir, { recursive: true });
    await this.#spawn("nsqd", url, [
      `--tcp-address=${formatHostPort(tcp)}`,
      `--http-address=${formatHostPort(http)}`,
      `--broadcast-address=${tcp.host}`,
      `--data-path=${dataDir.pathname}`,
      ...(lookupdTcp ? [`--lookupd-tcp-address=${lookupdTcp}`] : []),
    ]);
    return url;
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
    const shown = (line: string) =>
      !(this.#stopping && name === "nsqlookupd" && NSQD_LEFT.test(line));
    const output = Promise.all([
      prefixLines(child.stdout, name, shown),
      prefixLines(child.stderr, name, shown),
    ]).then(() => {});
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

  /**
   * Stops what dev started, after the daemon: nsqd first (it leaves
   * nsqlookupd), then nsqlookupd, waiting for each; says so in one line.
   */
  async stop(): Promise<void> {
    const started = this.#children.splice(0).reverse();
    if (started.length === 0) return;
    this.#stopping = true;
    for (const { child, output } of started) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await output;
    }
    const names = started.map(({ name, child }) => `${name} (pid ${child.pid})`);
    console.error(`dev: stopped the ${names.join(" and ")} it started`);
  }
}

/**
 * How to publish to the first entry: its topic on nsqd (topic_prefix
 * applied), through that nsqd's HTTP address.
 */
function printHint(config: Config, nsqdHttp: string): void {
  const entry = config.workers[0];
  if (entry === undefined) return;
  const body = entry.worker === "demo/pageview" ? '{"event_id":"e1","clicks":1}' : "hello";
  console.error(
    `dev: publish a test message to ${entry.worker} with\n` +
      `  curl -d '${body}' '${nsqdHttp}/pub?topic=${encodeURIComponent(entry.nsqTopic)}'`,
  );
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

/** Copies the lines of `stream` that are `shown` to stderr, each prefixed with `name`. */
async function prefixLines(
  stream: ReadableStream<Uint8Array>,
  name: string,
  shown: (line: string) => boolean,
): Promise<void> {
  let partial = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (shown(line)) console.error(`${name} | ${line}`);
  }
  if (partial !== "" && shown(partial)) console.error(`${name} | ${partial}`);
}

if (import.meta.main) Deno.exit(await runDev(Deno.args));
