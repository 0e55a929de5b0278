/**
 * `deno task dev`: runs config.yaml with human-readable logs, restarting on
 * code changes and reloading on config changes. When the config's nsqd or
 * nsqlookupd are on loopback and nothing listens there, it starts them first
 * (data under .cache/dev/) and stops them on exit, so a fresh checkout needs
 * only this one command.
 *
 * Usage: deno task dev [-c config.yaml]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "../src/config/load.ts";
import type { HostPort } from "../src/config/types.ts";
import { nsqBin } from "./nsq_bin.ts";
import { errorText } from "../src/error_text.ts";

const ROOT = new URL("../", import.meta.url);
const DATA_DIR = new URL(".cache/dev/", ROOT);

/** Permissions of the daemon under development: the binary's, with reading and writing anywhere. */
const DAEMON_PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-sys=hostname",
  "--allow-read",
  "--allow-write", // a sqlite: dedupe store, wherever the dev config puts it
];

const { values } = parseArgs({
  args: Deno.args,
  options: { config: { type: "string", short: "c", default: "config.yaml" } },
});
const configPath = values.config;
const config = await loadConfig(configPath).catch((error) => {
  console.error(errorText(error));
  Deno.exit(2);
});

const children: Deno.ChildProcess[] = [];

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

async function listening(address: HostPort): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: address.host, port: address.port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function waitListening(address: HostPort, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await listening(address))) {
    if (Date.now() > deadline) throw new Error(`${name} did not start on port ${address.port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function spawn(command: string, args: string[]): Deno.ChildProcess {
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "inherit" }).spawn();
  children.push(child);
  return child;
}

/** Starts nsqlookupd (when the config asks a loopback one that is down) and nsqd likewise. */
async function startNsq(): Promise<void> {
  const lookupd = config.nsq.lookupdHttpAddresses
    .map((url) => new URL(url))
    .map((url) => ({ host: url.hostname, port: Number(url.port || 80) }))
    .find((address) => isLoopback(address.host));
  const nsqd = config.nsq.publishNsqdTcpAddress ?? config.nsq.nsqdTcpAddresses[0] ??
    { host: "127.0.0.1", port: 4150 };
  await Deno.mkdir(DATA_DIR, { recursive: true });
  let lookupdTcp: string | null = null;
  if (lookupd && !(await listening(lookupd))) {
    // nsqlookupd's TCP port is conventionally its HTTP port − 1.
    lookupdTcp = `${lookupd.host}:${lookupd.port - 1}`;
    spawn(await nsqBin("nsqlookupd"), [
      `--http-address=${lookupd.host}:${lookupd.port}`,
      `--tcp-address=${lookupdTcp}`,
    ]);
    await waitListening(lookupd, "nsqlookupd");
    console.error(`dev: started nsqlookupd on ${lookupd.host}:${lookupd.port}`);
  } else if (lookupd) {
    lookupdTcp = `${lookupd.host}:${lookupd.port - 1}`;
  }
  if (isLoopback(nsqd.host) && !(await listening(nsqd))) {
    spawn(await nsqBin("nsqd"), [
      `--tcp-address=${nsqd.host}:${nsqd.port}`,
      `--http-address=${nsqd.host}:${nsqd.port + 1}`,
      `--broadcast-address=${nsqd.host}`,
      `--data-path=${new URL(".", DATA_DIR).pathname}`,
      ...(lookupdTcp ? [`--lookupd-tcp-address=${lookupdTcp}`] : []),
    ]);
    await waitListening(nsqd, "nsqd");
    console.error(
      `dev: started nsqd on ${nsqd.host}:${nsqd.port} (HTTP ${nsqd.port + 1}); publish with\n` +
        `  curl -d '{"event_id":"e1","clicks":1}' 'http://${nsqd.host}:${nsqd.port + 1}/pub?topic=${
          config.workers[0]?.nsqTopic ?? "pageviews"
        }'`,
    );
  }
}

async function stopAll(): Promise<void> {
  for (const child of children.reverse()) {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
  }
}

await startNsq();
const daemon = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...DAEMON_PERMISSIONS,
    `--watch=${new URL("src/", ROOT).pathname},${new URL("workers/", ROOT).pathname}`,
    new URL("main.ts", ROOT).pathname,
    "run",
    "-c",
    configPath,
    "--pretty",
    "--reload-on-change",
  ],
}).spawn();
// The daemon gets the same SIGINT from the terminal; on SIGTERM, pass it on.
const forward = () => daemon.kill("SIGTERM");
Deno.addSignalListener("SIGTERM", forward);
Deno.addSignalListener("SIGINT", () => {});
const { code } = await daemon.status;
Deno.removeSignalListener("SIGTERM", forward);
await stopAll();
Deno.exit(code);
