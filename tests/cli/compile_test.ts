/**
 * What the compiled binary relies on: its build flags, and every worker
 * module loading through the loader's path. When a denort is at hand
 * (DENORT_BIN, or beside deno) the binary itself is built and run.
 */

import assert from "node:assert/strict";
import {
  compileArgs,
  denortBesideDeno as besideDeno,
  EMBEDDED,
  findDenort,
  permissionFlags,
} from "../../tools/compile.ts";
import { loadWorkers, moduleSource, WORKERS_DIR } from "../../src/worker/worker_loader.ts";
import { WATCHDOG_MODULE } from "../../src/daemon/stall_watchdog.ts";
import { workerNames } from "../../src/worker/worker_names.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const options = { configDir: "/etc/nsqworker", dataDir: "/var/lib/nsqworker", output: "x" };

Deno.test("the binary embeds workers/, may run only itself, and gets no ffi or blanket permission", () => {
  const args = compileArgs({ ...options, target: "x86_64-unknown-linux-gnu" });
  assert.deepEqual(args.slice(-3), ["--target", "x86_64-unknown-linux-gnu", "main.ts"]);
  const included = args.flatMap((flag, i) => flag === "--include" ? [args[i + 1]] : []);
  assert.deepEqual(included, ["workers/", "src/daemon/stall_watchdog_worker.ts"]);
  for (const flag of args) {
    assert.doesNotMatch(flag, /^(-A|--allow-all|--allow-run$|--allow-ffi)/);
  }
  assert.deepEqual(permissionFlags(options), [
    "--allow-net",
    "--allow-env",
    "--allow-sys=hostname",
    "--allow-read=/etc/nsqworker,/var/lib/nsqworker",
    "--allow-write=/var/lib/nsqworker",
    "--allow-run=/usr/local/bin/nsqworker",
  ]);
  assert.equal(
    permissionFlags({ ...options, installPath: "/opt/nsqworker/bin/nsqworker" }).at(-1),
    "--allow-run=/opt/nsqworker/bin/nsqworker",
  );
});

Deno.test("the stall watchdog's worker module is embedded: the one the daemon starts", () => {
  const root = new URL("../../", import.meta.url);
  const embedded = EMBEDDED.map((path) => new URL(path, root).href);
  assert.ok(embedded.includes(WATCHDOG_MODULE.href), `${WATCHDOG_MODULE.href} not in ${embedded}`);
});

Deno.test("every module under workers/ loads through the loader", async () => {
  const names = await workerNames(WORKERS_DIR);
  assert.ok(names.includes("demo/pageview"));
  const location = { file: "config.yaml", line: 1, col: 1 };
  const { workers, issues } = await loadWorkers(
    names.map((name, index) => ({ index, name, location, options: {} })),
    {},
    moduleSource(),
  );
  assert.deepEqual(issues, []);
  for (const [index, name] of names.entries()) {
    const { handle, handleBatch } = workers.get(index)!.definition;
    assert.equal(typeof (handle ?? handleBatch), "function", name);
  }
});

const denort = await findDenort();

Deno.test({
  name: `the compiled binary runs check, version and consumes from nsqd${
    denort ? "" : " (skipped: no denort; set DENORT_BIN to a denort 2.9.6 to run it)"
  }`,
  ignore: denort === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "nsqworker_compile_" });
    try {
      const binary = `${dir}/nsqworker`;
      const build = await new Deno.Command("deno", {
        args: compileArgs({ configDir: dir, dataDir: dir, output: binary }),
        cwd: new URL("../../", import.meta.url),
        env: { DENORT_BIN: denort! },
      }).output();
      assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
      const version = await new Deno.Command(binary, { args: ["version"] }).output();
      assert.match(new TextDecoder().decode(version.stdout), /^nsqworker \S+\ndeno 2\.9/);

      await using nsq = await startNsq();
      const topic = uniqueTopic("bin");
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\nhttp: { listen: null }\n` +
          `workers:\n  - { topic: ${topic}, channel: c, worker: demo/pageview }\n`,
      );
      const check = await new Deno.Command(binary, {
        args: ["check", "-c", `${dir}/config.yaml`],
      }).output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
      // It consumes only once its stall watchdog runs: the embedded worker module loaded.
      const daemon = new Deno.Command(binary, {
        args: ["run", "-c", `${dir}/config.yaml`],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await nsq.publish(topic, JSON.stringify({ clicks: 1 }));
      await waitFor(async () => (await nsq.channel(topic, "c"))?.message_count === 1);
      await waitFor(async () => (await nsq.channel(topic, "c"))?.depth === 0);
      daemon.kill("SIGTERM");
      assert.equal((await daemon.status).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const denortBesideDeno = besideDeno();
const hasDenortBesideDeno = await Deno.stat(denortBesideDeno).then(() => true, () => false);

Deno.test({
  name: "deno task compile without a reachable runtime download: one clear message, exit 1, " +
    `nothing left in dist/${hasDenortBesideDeno ? ` (skipped: ${denortBesideDeno} exists)` : ""}`,
  ignore: hasDenortBesideDeno,
  async fn() {
    const root = new URL("../../", import.meta.url);
    const dist = new URL("dist/", root);
    const listing = async () => {
      try {
        return (await Array.fromAsync(Deno.readDir(dist))).map((entry) => entry.name).sort();
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      }
    };
    const before = await listing();
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "compile"],
      cwd: root,
      // No DENORT_BIN, and every download goes through a proxy that is not there.
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "",
        ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
        HTTPS_PROXY: "http://127.0.0.1:9",
        NO_COLOR: "1",
      },
      stdin: "null",
    }).output();
    const text = new TextDecoder();
    const err = text.decode(stderr);
    assert.equal(code, 1, err);
    assert.match(text.decode(stdout), /^deno compile /);
    assert.doesNotMatch(err, /Stack backtrace|Caused by/);
    assert.match(
      err,
      /^compile: deno compile could not download its runtime \(denort\) from https:\/\/dl\.deno\.land\//,
    );
    assert.match(err, /DENORT_BIN/);
    assert.ok(err.includes(denortBesideDeno), "names where a denort beside deno would be");
    assert.deepEqual(await listing(), before, "dist/ as it was");
  },
});
