/**
 * `deno task dev` as a terminal runs it: under `deno task`, in a process
 * group of its own, stopped by SIGINT to the whole group (what Ctrl-C does).
 * It starts its own nsqlookupd and nsqd on free loopback ports, with the
 * shipped task's permissions; only the daemon's workers are the test ones.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_DIR, TempDir } from "../helpers/daemon_process.ts";
import { trackChild } from "../helpers/children.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { answersPing } from "../../tools/nsq_probe.ts";

/** The shipped `dev` task, running the fixture entry point instead of tools/dev.ts. */
async function devTask(): Promise<string> {
  const { tasks } = JSON.parse(await Deno.readTextFile(join(REPO_DIR, "deno.json")));
  const task = String(tasks.dev);
  assert.ok(task.endsWith(" tools/dev.ts"), `the dev task runs tools/dev.ts: ${task}`);
  return task.replace(/tools\/dev\.ts$/, "tests/fixtures/dev_main.ts");
}

/** A loopback port `p` such that `p` and `p + 1` are both free now. */
function freePortPair(): number {
  for (;;) {
    const first = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (first.addr as Deno.NetAddr).port;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port + 1 }).close();
      return port;
    } catch {
      // Taken: try another.
    } finally {
      first.close();
    }
  }
}

/** `deno task dev` in a new session; `interrupt()` is Ctrl-C: SIGINT to the whole group. */
class DevProcess implements AsyncDisposable {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;

  constructor(task: string, configPath: string) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["task", "--eval", `${task} -c ${configPath}`],
      cwd: REPO_DIR,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // a session and process group of its own, like a terminal's job
    }).spawn();
    const child = this.#child;
    trackChild(child);
    this.status = Promise.all([
      child.status,
      this.#read(child.stdout, this.stdout),
      this.#read(child.stderr, this.stderr),
    ]).then(([status]) => status);
  }

  interrupt(): void {
    Deno.kill(-this.#child.pid, "SIGINT");
  }

  /** Waits for a line; on timeout, fails with the output so far. */
  async waitForLine(stream: "stdout" | "stderr", predicate: (line: string) => boolean) {
    try {
      // The first run may build the NSQ binaries.
      await waitFor(() => this[stream].some(predicate), { timeoutMs: 60_000 });
    } catch (error) {
      const tail = (lines: string[]) => lines.slice(-30).join("\n");
      throw new Error(
        `${(error as Error).message}: a ${stream} line of deno task dev\n` +
          `--- stdout ---\n${tail(this.stdout)}\n--- stderr ---\n${tail(this.stderr)}`,
      );
    }
  }

  /** The process ids dev reported for the nsqd and nsqlookupd it started. */
  startedPids(): number[] {
    return this.stderr.flatMap((line) => {
      const match = /^dev: started \S+ \(pid (\d+)\)/.exec(line);
      return match ? [Number(match[1])] : [];
    });
  }

  async #read(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts);
    }
    if (partial !== "") lines.push(partial);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      Deno.kill(-this.#child.pid, "SIGKILL");
    } catch {
      // The group is gone already.
    }
    await this.status;
    // nsqd and nsqlookupd run in sessions of their own: a failed test must not leave them behind.
    for (const pid of this.startedPids()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Stopped by dev, as it should.
      }
    }
  }
}

interface DevSetup {
  readonly dir: TempDir;
  readonly topic: string;
  readonly nsqdHttp: string;
  readonly lookupdHttp: string;
  readonly configPath: string;
}

/** A config of one `record` entry (see {@linkcode devConfig}) on free ports for dev's own NSQ. */
async function devSetup(sleepMs: number, entry: Record<string, unknown> = {}): Promise<DevSetup> {
  const dir = await TempDir.create();
  const topic = uniqueTopic("dev");
  const nsqdTcp = freePortPair();
  const lookupdTcp = freePortPair();
  const nsq = {
    lookupd_http_addresses: [`http://127.0.0.1:${lookupdTcp + 1}`],
    publish_nsqd_tcp_address: `127.0.0.1:${nsqdTcp}`,
  };
  return {
    dir,
    topic,
    nsqdHttp: `http://127.0.0.1:${nsqdTcp + 1}`,
    lookupdHttp: `http://127.0.0.1:${lookupdTcp + 1}`,
    configPath: await dir.writeConfig(devConfig(dir, nsq, topic, sleepMs, entry)),
  };
}

/** `nsq`, and one entry of the `record` worker on `topic`, with `entry` over its keys. */
function devConfig(
  dir: TempDir,
  nsq: Record<string, unknown>,
  topic: string,
  sleepMs = 0,
  entry: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    nsq,
    http: { listen: "127.0.0.1:0" },
    shutdown_timeout: "20s",
    workers: [{
      topic,
      channel: "work",
      worker: "record",
      options: {
        out: dir.join("handled.txt"),
        sleep_ms: sleepMs,
        teardown_out: dir.join("td.txt"),
      },
      ...entry,
    }],
  };
}

async function publish(nsqdHttp: string, topic: string, body: string): Promise<void> {
  const response = await fetch(`${nsqdHttp}/pub?topic=${topic}`, { method: "POST", body });
  assert.equal(response.status, 200, await response.text());
}

/** nsqd's data of a dev run on free ports lives under .cache/dev/; remove it afterwards. */
async function removeDevData(nsqdHttp: string): Promise<void> {
  const port = Number(new URL(nsqdHttp).port) - 1;
  await Deno.remove(join(REPO_DIR, ".cache", "dev", `nsqd-${port}`), { recursive: true })
    .catch(() => {});
}

Deno.test("deno task dev: the first message is handled within 1 s; Ctrl-C drains it, runs teardown, stops NSQ after", async () => {
  const setup = await devSetup(3000);
  await using dir = setup.dir;
  try {
    await using dev = new DevProcess(await devTask(), setup.configPath);
    await dev.waitForLine("stdout", (line) => /\bstarted\b.*\bentries=1\b/.test(line));
    const publishedAt = performance.now();
    await publish(setup.nsqdHttp, setup.topic, "first");
    await dev.waitForLine("stdout", (line) => line.includes("record: handling"));
    const firstMessageMs = performance.now() - publishedAt;
    assert.ok(firstMessageMs < 1000, `first message handled after ${firstMessageMs} ms`);

    dev.interrupt();
    const { code } = await dev.status;
    assert.equal(code, 0, dev.stdout.slice(-20).join("\n"));
    assert.equal((await dir.readLines("handled.txt")).length, 1, "the handler finished");
    assert.deepEqual(await dir.readLines("td.txt"), ["teardown"]);
    assert.equal(await answersPing(setup.nsqdHttp), false, "dev stopped its nsqd");
    assert.equal(await answersPing(setup.lookupdHttp), false, "dev stopped its nsqlookupd");
    const stderr = dev.stderr.join("\n");
    assert.doesNotMatch(stderr, /failed to read protocol version/);
    assert.doesNotMatch(stderr, /INFO: /, "nsqd and nsqlookupd log warnings only");
    assert.doesNotMatch(
      stderr,
      /^nsqlookupd \| .*ERROR/m,
      "nsqd left nsqlookupd before it stopped",
    );
    const [lookupdPid, nsqdPid] = dev.startedPids();
    assert.ok(
      dev.stderr.includes(
        `dev: stopped the nsqd (pid ${nsqdPid}) and nsqlookupd (pid ${lookupdPid}) it started`,
      ),
      stderr,
    );
  } finally {
    await removeDevData(setup.nsqdHttp);
  }
});

Deno.test("deno task dev: a second Ctrl-C exits at once; NSQ is stopped all the same", async () => {
  const setup = await devSetup(60_000);
  await using dir = setup.dir;
  try {
    await using dev = new DevProcess(await devTask(), setup.configPath);
    await dev.waitForLine("stdout", (line) => /\bstarted\b.*\bentries=1\b/.test(line));
    await publish(setup.nsqdHttp, setup.topic, "slow");
    await dev.waitForLine("stdout", (line) => line.includes("record: handling"));
    dev.interrupt();
    await dev.waitForLine("stdout", (line) => line.includes("draining"));
    const secondAt = performance.now();
    dev.interrupt();
    const { code } = await dev.status;
    const exitMs = performance.now() - secondAt;
    assert.ok(exitMs < 5000, `exited ${exitMs} ms after the second Ctrl-C`);
    assert.equal(code, 1);
    assert.deepEqual(await dir.readLines("handled.txt"), [], "the handler was cut short");
    assert.equal(await answersPing(setup.nsqdHttp), false, "dev stopped its nsqd");
    assert.equal(await answersPing(setup.lookupdHttp), false, "dev stopped its nsqlookupd");
  } finally {
    await removeDevData(setup.nsqdHttp);
  }
});

Deno.test("deno task dev: an nsqd already running with its HTTP port apart from TCP + 1 is used, not started again", async () => {
  await using nsq = await startNsq();
  const nsqd = nsq.nsqds[0]!;
  assert.notEqual(nsqd.httpPort, nsqd.tcpPort + 1, "the ports happen to be paired: run again");
  await using dir = await TempDir.create();
  const topic = uniqueTopic("dev_running");
  const configPath = await dir.writeConfig(devConfig(dir, {
    lookupd_http_addresses: [nsq.lookupd!.httpUrl],
    publish_nsqd_tcp_address: nsqd.tcpAddress,
    topic_prefix: "pre_",
  }, topic));
  await using dev = new DevProcess(await devTask(), configPath);
  await dev.waitForLine("stdout", (line) => /\bstarted\b.*\bentries=1\b/.test(line));
  // The hint names the entry's topic, prefix included, on the nsqd's real HTTP address.
  const hint = dev.stderr[dev.stderr.indexOf("dev: publish a test message to record with") + 1];
  assert.equal(
    hint,
    `  curl -d 'hello' '${nsqd.httpUrl}/pub?topic=pre_${topic}'`,
    dev.stderr.join("\n"),
  );
  const response = await fetch(hint.slice(hint.lastIndexOf(" '") + 2, -1), {
    method: "POST",
    body: "through the hint",
  });
  assert.equal(response.status, 200, await response.text());
  await dev.waitForLine("stdout", (line) => line.includes("record: handling"));
  dev.interrupt();
  const { code } = await dev.status;
  assert.equal(code, 0, dev.stderr.join("\n"));
  assert.deepEqual(dev.startedPids(), [], "dev started no nsqd or nsqlookupd");
  assert.ok(nsqd.running && await answersPing(nsqd.httpUrl), "dev left the running nsqd alone");
  assert.equal((await dir.readLines("handled.txt")).length, 1);
});

Deno.test("deno task dev: a port taken by a program that is not nsqd ends dev with one line", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  await using dir = await TempDir.create();
  const configPath = await dir.writeConfig(
    devConfig(dir, { nsqd_tcp_addresses: [address] }, uniqueTopic("dev_taken")),
  );
  await using dev = new DevProcess(await devTask(), configPath);
  const { code } = await dev.status;
  assert.equal(code, 1, dev.stderr.join("\n"));
  // `deno task` names the command first; dev adds one line.
  assert.deepEqual(dev.stderr.filter((line) => !line.startsWith("Task ")), [
    `dev: ${address} (the config's nsqd) is taken by something that is not nsqd: it did not ` +
    "answer NSQ's IDENTIFY within 1000 ms",
  ]);
});

Deno.test("deno task dev: config and worker errors are reported together before anything starts; the fixed config starts it all", async () => {
  // A config error and a worker error: one check reports both.
  const setup = await devSetup(0, { worker: "test/missing", max_in_flight: "ten" });
  await using dir = setup.dir;
  try {
    await using dev = new DevProcess(await devTask(), setup.configPath);
    await dev.waitForLine("stderr", (line) => line.startsWith("dev: nothing started"));
    const stderr = dev.stderr.join("\n");
    assert.match(stderr, /workers\/test\/missing\.ts: no such worker module/);
    assert.match(stderr, /workers\[0\]\.max_in_flight must be an integer/);
    assert.deepEqual(dev.startedPids(), [], "nothing started before the check passed");
    assert.equal(await answersPing(setup.nsqdHttp), false);
    assert.equal(await answersPing(setup.lookupdHttp), false);

    const fixed = JSON.parse(await Deno.readTextFile(setup.configPath));
    fixed.workers[0].worker = "record";
    delete fixed.workers[0].max_in_flight;
    await dir.writeConfig(fixed);
    await dev.waitForLine("stdout", (line) => /\bstarted\b.*\bentries=1\b/.test(line));
    await publish(setup.nsqdHttp, setup.topic, "after the fix");
    await dev.waitForLine("stdout", (line) => line.includes("record: handling"));
    dev.interrupt();
    assert.equal((await dev.status).code, 0, dev.stderr.join("\n"));
  } finally {
    await removeDevData(setup.nsqdHttp);
  }
});

Deno.test("deno task dev: a daemon that failed to start starts again when the config is fixed", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const setup = await devSetup(0);
  await using dir = setup.dir;
  try {
    const config = JSON.parse(await Deno.readTextFile(setup.configPath));
    config.http.listen = `127.0.0.1:${(taken.addr as Deno.NetAddr).port}`;
    await dir.writeConfig(config);
    await using dev = new DevProcess(await devTask(), setup.configPath);
    await dev.waitForLine("stderr", (line) => line.startsWith("dev: the daemon exited with code"));

    config.http.listen = "127.0.0.1:0";
    await dir.writeConfig(config);
    await dev.waitForLine("stdout", (line) => /\bstarted\b.*\bentries=1\b/.test(line));
    dev.interrupt();
    assert.equal((await dev.status).code, 0, dev.stderr.join("\n"));
  } finally {
    await removeDevData(setup.nsqdHttp);
  }
});
