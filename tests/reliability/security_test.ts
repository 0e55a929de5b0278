/**
 * Security, where the other tests leave gaps: worker names that
 * try to leave workers/ (refused by the config and by the loader, which
 * imports nothing), pause over a real listener of `nsqworker run` without
 * or with a wrong token (nsqd's RDY unchanged), and the permissions of the
 * compiled binary, shown with `deno run` and the exact flags of
 * tools/compile.ts, and on the binary itself where a denort is at hand.
 *
 * Token checks of the handler, the non-loopback listen rule and secrets in
 * logs are covered by tests/daemon/http_test.ts, tests/cli/secrets_test.ts and the
 * config corpus.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/config/config_error.ts";
import { loadConfig } from "../../src/config/load.ts";
import { moduleSource, WorkerLoadError } from "../../src/worker/worker_loader.ts";
import { compileArgs, findDenort, permissionFlags } from "../../tools/compile.ts";
import { REPO_DIR, startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { readLedgerFile } from "./ledger.ts";

/** Worker names that point outside workers/, or at something that is not a module there. */
const ESCAPES = [
  "../x",
  "..",
  "/etc/passwd",
  "file:///etc/passwd",
  "https://example.com/worker.ts",
  "a/../../b",
  "a\\b",
  "\\\\server\\share\\x",
  "C:\\x",
  "%2e%2e/x",
  "%2E%2E/%2e%2e/x",
  "demo/pageview.ts",
  "./demo/pageview",
  "demo//pageview",
  "demo/",
  "npm:left-pad",
  "jsr:@std/path",
  "data:text/javascript,export default {}",
  "blob:x",
  "demo/pageview?x=1",
  "demo/pageview#x",
  " demo/pageview",
  "demo/pageview\u0000",
  "\uff0e\uff0e/x",
];

Deno.test("worker names that try to leave workers/ are refused by the config, at the worker key", async () => {
  await using dir = await TempDir.create();
  for (const name of ESCAPES) {
    const text = "nsq: { nsqd_tcp_addresses: [127.0.0.1:4150] }\nworkers:\n" +
      `  - { topic: t, channel: c, worker: ${JSON.stringify(name)} }\n`;
    await assert.rejects(loadConfig(await dir.writeConfig(text, "escape.yaml"), {}), (error) => {
      assert.ok(error instanceof ConfigError, `${JSON.stringify(name)}: ${error}`);
      assert.deepEqual(
        error.issues.map((i) => [i.path, i.line, i.col]),
        [["workers[0].worker", 3, 37]],
        JSON.stringify(name),
      );
      return true;
    });
  }
});

Deno.test("the worker loader refuses the same names without importing anything", async () => {
  await using dir = await TempDir.create();
  // Modules where a path that escaped workers/ would land, each springing a trap when imported.
  const workers = join(dir.path, "root", "workers");
  await Deno.mkdir(join(workers, "a"), { recursive: true });
  const trap = "globalThis.__nsqworkerTrap = (globalThis.__nsqworkerTrap ?? 0) + 1;\n" +
    "export default { handle() {} };\n";
  for (const path of ["root/x.ts", "x.ts", "b.ts", "root/b.ts"]) {
    await Deno.writeTextFile(join(dir.path, path), trap);
  }
  const source = moduleSource(new URL(`file://${workers}/`));
  const trapped = () => (globalThis as { __nsqworkerTrap?: number }).__nsqworkerTrap ?? 0;
  for (const name of ESCAPES) {
    await assert.rejects(
      source(name),
      WorkerLoadError,
      `${JSON.stringify(name)} must be refused`,
    );
  }
  assert.equal(trapped(), 0, "a module outside workers/ was imported");
  // The traps are reachable: the same folder loads a legitimate name.
  await Deno.writeTextFile(join(workers, "a", "ok.ts"), trap);
  await source("a/ok");
  assert.equal(trapped(), 1);
  delete (globalThis as { __nsqworkerTrap?: number }).__nsqworkerTrap;
});

Deno.test("nsqworker run: pause over the real listener without or with a wrong token changes nothing on nsqd", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("auth");
  const token = crypto.randomUUID();
  const out = dir.join("ledger.txt");
  await using daemon = await startDaemon(dir, {
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    http: { listen: "127.0.0.1:0", token: "${NSQWORKER_TOKEN}" },
    workers: [{ topic, channel: "work", worker: "ledger", max_in_flight: 5, options: { out } }],
  }, { env: { NSQWORKER_TOKEN: token } });
  const address = JSON.parse(await daemon.waitForLine((l) => l.includes('"http listening"')))
    .address;
  const rdy = async () => (await nsq.channel(topic, "work"))?.clients[0]?.ready_count;
  await waitFor(async () => (await rdy()) === 5, { message: "RDY 5" });
  const pause = async (init: RequestInit, query = "") => {
    const response = await fetch(`http://${address}/entries/${topic}/work/pause${query}`, {
      method: "POST",
      ...init,
    });
    await response.body?.cancel();
    return response.status;
  };
  const refusals: [string, RequestInit, string][] = [
    ["no header", {}, ""],
    ["a wrong token", { headers: { Authorization: `Bearer ${token.slice(0, -1)}x` } }, ""],
    ["the token as a query parameter", {}, `?token=${token}`],
    ["the token as Basic credentials", {
      headers: { Authorization: `Basic ${btoa(`nsqworker:${token}`)}` },
    }, ""],
    ["the token without a scheme", { headers: { Authorization: token } }, ""],
  ];
  let published = 0;
  for (const [what, init, query] of refusals) {
    assert.equal(await pause(init, query), 401, what);
    assert.equal(await rdy(), 5, `${what}: RDY unchanged`);
    await nsq.publish(topic, `m${++published}`);
    await waitFor(async () => (await readLedgerFile(out)).length === published, {
      message: `${what}: still consuming`,
    });
  }
  assert.equal(await pause({ headers: { Authorization: `Bearer ${token}` } }), 200);
  await waitFor(async () => (await rdy()) === 0, { message: "RDY 0 with the token" });
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

/** What the probe reports under the binary's flags. */
const EXPECTED_PROBE = {
  read_config: "allowed",
  write_store: "allowed",
  write_outside_store: "denied",
  write_config: "denied",
  read_outside: "denied",
  run_subprocess: "denied",
  run_shell: "denied",
  ffi: "denied",
  env: "allowed",
  hostname: "allowed",
  os_release: "denied",
  listen: "allowed",
};

const PROBE = fileURLToPath(new URL("./permission_probe.ts", import.meta.url));

/** Config, data and an outside folder, with a config and a secret to reach for. */
async function probeDirs(dir: TempDir) {
  const configDir = dir.join("etc");
  const dataDir = dir.join("var");
  const outside = dir.join("elsewhere");
  for (const path of [configDir, dataDir, outside]) await Deno.mkdir(path);
  await Deno.writeTextFile(join(configDir, "config.yaml"), "nsq: {}\n");
  await Deno.writeTextFile(join(outside, "secret.txt"), "secret\n");
  return { configDir, dataDir, outside };
}

function assertProbe(output: Deno.CommandOutput, outside: string): void {
  const decoder = new TextDecoder();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.deepEqual(JSON.parse(decoder.decode(output.stdout)), EXPECTED_PROBE);
  assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret.txt"]);
}

Deno.test("under the binary's permission flags (deno run), writing outside the store, running a subprocess and ffi are denied", async () => {
  await using dir = await TempDir.create();
  const { configDir, dataDir, outside } = await probeDirs(dir);
  const flags = permissionFlags({ configDir, dataDir, output: "unused" });
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-config", ...flags, PROBE, configDir, dataDir, outside],
    stdin: "null",
  }).output();
  assertProbe(output, outside);
});

const denort = await findDenort();

Deno.test({
  name: `the compiled binary is denied what it must not do${
    denort ? "" : " (skipped: no denort here; set DENORT_BIN to a denort 2.9.6 to run it)"
  }`,
  ignore: denort === null,
  async fn() {
    await using dir = await TempDir.create();
    const { configDir, dataDir, outside } = await probeDirs(dir);
    const env = { DENORT_BIN: denort! };
    const decoder = new TextDecoder();
    // The probe, compiled with exactly the flags the binary gets.
    const probe = dir.join("probe");
    const flags = permissionFlags({ configDir, dataDir, output: probe });
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "--no-config", ...flags, "--output", probe, PROBE],
      env,
    }).output();
    assert.equal(built.code, 0, decoder.decode(built.stderr));
    assertProbe(
      await new Deno.Command(probe, { args: [configDir, dataDir, outside] }).output(),
      outside,
    );

    // The binary itself reads configs only from its config dir.
    const binary = dir.join("nsqworker");
    const build = await new Deno.Command(Deno.execPath(), {
      args: compileArgs({ configDir, dataDir, output: binary }),
      cwd: REPO_DIR,
      env,
    }).output();
    assert.equal(build.code, 0, decoder.decode(build.stderr));
    const config = "nsq: { nsqd_tcp_addresses: [127.0.0.1:4150] }\n" +
      "workers: [{ topic: t, channel: c, worker: demo/pageview }]\n";
    for (const folder of [configDir, outside]) {
      await Deno.writeTextFile(join(folder, "config.yaml"), config);
    }
    const inside = await new Deno.Command(binary, {
      args: ["check", "-c", join(configDir, "config.yaml")],
    }).output();
    assert.equal(inside.code, 0, decoder.decode(inside.stderr));
    const elsewhere = await new Deno.Command(binary, {
      args: ["check", "-c", join(outside, "config.yaml")],
    }).output();
    assert.equal(elsewhere.code, 2);
    assert.match(decoder.decode(elsewhere.stderr), /cannot read file: .*read access/i);
  },
});
