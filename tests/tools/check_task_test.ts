/**
 * `deno task check`, with the shipped task's permissions: `nsqworker check`,
 * then the type check of the worker modules the config names, which the
 * compiled binary cannot make. Workers that must not compile are written to
 * a temporary folder (`deno check tests/` checks everything in tests/).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_DIR, runCli, TempDir } from "../helpers/daemon_process.ts";
import { typedWorker } from "../helpers/typed_worker.ts";

/** `deno task --quiet ARGS` in the repository, outside a terminal. */
async function denoTask(args: readonly string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", ...args],
    cwd: REPO_DIR,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/**
 * The shipped `check` task, its permissions and all, running the fixture
 * entry point (workers from `NSQWORKER_TEST_WORKERS`) instead of tools/check.ts.
 */
async function fixtureCheckTask(): Promise<string> {
  const { tasks } = JSON.parse(await Deno.readTextFile(join(REPO_DIR, "deno.json")));
  const task = String(tasks.check);
  assert.ok(task.endsWith(" tools/check.ts"), `the check task runs tools/check.ts: ${task}`);
  assert.ok(!/ -A\b| --allow-all\b/.test(task), `named permissions only: ${task}`);
  return task.replace(/tools\/check\.ts$/, "tests/fixtures/check_main.ts");
}

const CONFIG = [
  "nsq:",
  "  nsqd_tcp_addresses: [127.0.0.1:1]",
  "workers:",
  "  - topic: pageviews",
  "    channel: counter",
  "    worker: stats/pageview",
  "",
].join("\n");

Deno.test("deno task check refuses a worker that misspells a field of its typed body", async () => {
  await using dir = await TempDir.create();
  const config = await dir.writeConfig(CONFIG);
  /** The folder of a `stats/pageview` worker reading `body.<field>`, for NSQWORKER_TEST_WORKERS. */
  const workersReading = async (field: string) => {
    const workers = dir.join(`reads_${field}`);
    await Deno.mkdir(`${workers}/stats`, { recursive: true });
    await Deno.writeTextFile(`${workers}/stats/pageview.ts`, typedWorker(`body.${field}`));
    return { NSQWORKER_TEST_WORKERS: workers };
  };
  const [typo, right] = await Promise.all([workersReading("clickz"), workersReading("clicks")]);
  const task = `${await fixtureCheckTask()} -c ${config}`;
  // Each type check takes seconds: all three at once.
  const [loaded, refused, accepted] = await Promise.all([
    // The module loads and has the right shape: nsqworker check alone accepts it.
    runCli(["check", "-c", config], { entry: "fixture", env: typo }),
    denoTask(["--eval", task], typo),
    denoTask(["--eval", task], right),
  ]);
  assert.equal(loaded.code, 0, loaded.stderr);

  const lines = typedWorker("body.clickz").split("\n");
  const line = lines.findIndex((text) => text.includes("body.clickz")) + 1;
  const column = lines[line - 1]!.indexOf("clickz") + 1;
  assert.equal(refused.code, 2, refused.stderr);
  assert.equal(refused.stdout, "");
  assert.match(
    refused.stderr,
    new RegExp(
      `^workers/stats/pageview\\.ts:${line}:${column}: Property 'clickz' does not exist on type ` +
        `'\\{[^']*clicks: number;[^']*\\}'\\. Did you mean 'clicks'\\?\n$`,
    ),
  );

  assert.deepEqual(accepted, {
    code: 0,
    stdout: `${config}: OK: 1 entry, workers: stats/pageview\n`,
    stderr: "",
  });
});

Deno.test("deno task check accepts the shipped config.yaml", async () => {
  // Whatever the config.yaml a user has made of it: only that it is valid.
  const { code, stdout, stderr } = await denoTask(["check"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^config\.yaml: OK: \d+ entr(y|ies), workers: \S.*\n$/);
});
