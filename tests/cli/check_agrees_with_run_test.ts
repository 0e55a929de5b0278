/**
 * `check` and `run` refuse the same configs, through the real command line
 * (`deno run` with the permissions the daemon ships with: no `--allow-ffi`),
 * and report every problem at once, each at its `file:line:col`.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/config_error.ts";
import { type CliResult, runCli, spawnCli, TempDir } from "../helpers/daemon_process.ts";
import { startInProcess } from "../helpers/in_process.ts";

/**
 * A config on an nsqd nothing listens on: `extra` lines after its address
 * (indented ones belong to `nsq:`), then one entry per list of lines after
 * its topic and channel.
 */
function configText(extra: string[], ...entries: string[][]): string {
  const items = entries.map((lines, i) => [
    `  - topic: ${i === 0 ? "pageviews" : `topic${i}`}`,
    "    channel: counter",
    ...lines.map((line) => `    ${line}`),
  ]);
  return ["nsq:", "  nsqd_tcp_addresses: [127.0.0.1:1]", ...extra, "workers:", ...items.flat(), ""]
    .join("\n");
}

/** `file:line:col` of the first occurrence of `needle` in `text` (1-based). */
function locate(file: string, text: string, needle: string): string {
  const offset = text.indexOf(needle);
  assert.ok(offset >= 0, `${needle} not in ${file}`);
  const before = text.slice(0, offset).split("\n");
  return `${file}:${before.length}:${before.at(-1)!.length + 1}`;
}

/**
 * Runs `check` and `run` on `text` written to `dir/config.yaml` and returns
 * both results; `workers` picks the fixture workers or another folder.
 */
async function checkAndRun(
  dir: TempDir,
  text: string,
  options: { fixtureWorkers?: boolean; workersDir?: string } = {},
): Promise<CliResult[]> {
  await dir.writeConfig(text);
  const entry = options.fixtureWorkers || options.workersDir ? "fixture" : "main";
  const env = options.workersDir ? { NSQWORKER_TEST_WORKERS: options.workersDir } : undefined;
  return await Promise.all(
    ["check", "run"].map((command) =>
      runCli([command, "-c", "config.yaml"], { entry, cwd: dir.path, ...(env ? { env } : {}) })
    ),
  );
}

/** Both exit 2 with exactly `lines` on stderr (strings or patterns), no stack trace. */
function assertRefused(results: CliResult[], lines: (string | RegExp)[]): void {
  for (const [i, { code, stdout, stderr }] of results.entries()) {
    const command = i === 0 ? "check" : "run";
    assert.equal(code, 2, `${command} exited ${code}:\n${stderr}`);
    assert.equal(stdout, "", command);
    assert.ok(!stderr.includes("    at "), `${command}: stack trace in:\n${stderr}`);
    const reported = stderr.trimEnd().split("\n");
    assert.equal(reported.length, lines.length, `${command}:\n${stderr}`);
    for (const [j, want] of lines.entries()) {
      if (typeof want === "string") assert.equal(reported[j], want, command);
      else assert.match(reported[j]!, want, command);
    }
  }
}

Deno.test("TLS files that are missing or unreadable are refused at their line", async () => {
  await using dir = await TempDir.create();
  await Deno.mkdir(dir.join("key.pem"));
  const text = configText(
    [
      "  tls:",
      "    ca_file: missing-ca.pem",
      "    cert_file: missing-cert.pem",
      "    key_file: key.pem",
    ],
    ["worker: demo/pageview"],
  );
  const results = await checkAndRun(dir, text);
  const at = (needle: string) => locate("config.yaml", text, needle);
  assertRefused(results, [
    `${at("missing-ca.pem")}: nsq.tls.ca_file cannot be read: No such file or directory`,
    `${at("missing-cert.pem")}: nsq.tls.cert_file cannot be read: No such file or directory`,
    new RegExp(`^${at("key.pem")}: nsq\\.tls\\.key_file cannot be read: .+`),
  ]);
});

Deno.test("dedupe.tls files that are missing are refused at their line", async () => {
  await using dir = await TempDir.create();
  const text = configText(
    [
      "dedupe:",
      "  store: rediss://127.0.0.1:1/0",
      "  tls:",
      "    ca_file: missing-redis-ca.pem",
      "    cert_file: missing-redis-cert.pem",
      "    key_file: missing-redis-key.pem",
    ],
    ["worker: demo/pageview"],
  );
  const results = await checkAndRun(dir, text);
  const at = (needle: string) => locate("config.yaml", text, needle);
  assertRefused(results, [
    `${at("missing-redis-ca.pem")}: dedupe.tls.ca_file cannot be read: No such file or directory`,
    `${
      at("missing-redis-cert.pem")
    }: dedupe.tls.cert_file cannot be read: No such file or directory`,
    `${at("missing-redis-key.pem")}: dedupe.tls.key_file cannot be read: No such file or directory`,
  ]);
});

Deno.test("compression: snappy without --allow-ffi is refused at its line", async () => {
  await using dir = await TempDir.create();
  const text = configText(["  compression: snappy"], ["worker: demo/pageview"]);
  const results = await checkAndRun(dir, text);
  assertRefused(results, [
    `${locate("config.yaml", text, "snappy")}: nsq.compression is snappy, whose codec is a ` +
    `native addon that needs --allow-ffi, which this process does not have (nor does the ` +
    `compiled binary): use deflate or none`,
  ]);
});

Deno.test("config errors and worker errors are reported together", async () => {
  await using dir = await TempDir.create();
  const text = configText(
    [],
    ["worker: demo/pageveiw", "max_in_flight: ten"],
    ["worker: demo/pageview", "options: { label: 42, colour: red }"],
  );
  const results = await checkAndRun(dir, text);
  const at = (needle: string) => locate("config.yaml", text, needle);
  assertRefused(results, [
    `${at("demo/pageveiw")}: workers/demo/pageveiw.ts: no such worker module ` +
    "(did you mean demo/pageview?)",
    `${at("ten")}: workers[0].max_in_flight must be an integer from 1 to 2500, got "ten"`,
    `${at("42")}: workers[1].options.label must be a string like the default of ` +
    `workers/demo/pageview.ts ("demo"), got 42`,
    `${at("colour")}: workers[1].options.colour is not an option of workers/demo/pageview.ts ` +
    `(its options: label, counted_topic)`,
  ]);
});

Deno.test("a misspelt worker name is refused with the module under workers/ it is closest to", async () => {
  await using dir = await TempDir.create();
  const workers = dir.join("workers");
  await Deno.mkdir(`${workers}/shop`, { recursive: true });
  await Deno.writeTextFile(`${workers}/shop/order.ts`, "export default { handle() {} };\n");
  const text = configText([], ["worker: shop/ordr"], ["worker: shop/refund"]);
  const results = await checkAndRun(dir, text, { workersDir: workers });
  const at = (needle: string) => locate("config.yaml", text, needle);
  assertRefused(results, [
    `${at("shop/ordr")}: workers/shop/ordr.ts: no such worker module (did you mean shop/order?)`,
    // Nothing is close enough to be the name meant: no guess.
    `${at("shop/refund")}: workers/shop/refund.ts: no such worker module`,
  ]);
});

Deno.test("a syntax error in a worker module is reported with its file:line:col", async () => {
  await using dir = await TempDir.create();
  const workers = dir.join("workers");
  await Deno.mkdir(workers);
  await Deno.writeTextFile(
    `${workers}/broken.ts`,
    ["export default {", "  handle(body: string) {", "    call(1, body;", "  },", "};", ""]
      .join("\n"),
  );
  const text = configText([], ["worker: broken"]);
  const results = await checkAndRun(dir, text, { workersDir: workers });
  assertRefused(results, [
    `${locate("config.yaml", text, "broken")}: workers/broken.ts:3:17: cannot be loaded: ` +
    `SyntaxError: Expected ',', got ';'`,
  ]);
});

Deno.test("a worker with both schema and validate, or a schema that is not one, is refused", async () => {
  await using dir = await TempDir.create();
  const workers = dir.join("workers");
  await Deno.mkdir(workers);
  const schema =
    `{ "~standard": { version: 1, vendor: "test", validate: (value) => ({ value }) } }`;
  await Deno.writeTextFile(
    `${workers}/both.ts`,
    `export default { schema: ${schema}, validate: () => true, handle() {} };\n`,
  );
  await Deno.writeTextFile(
    `${workers}/not_standard.ts`,
    `export default { schema: { parse: (value) => value }, handle() {} };\n`,
  );
  const text = configText([], ["worker: both"], ["worker: not_standard"]);
  const results = await checkAndRun(dir, text, { workersDir: workers });
  assertRefused(results, [
    `${locate("config.yaml", text, "both")}: workers/both.ts: has both schema and validate; ` +
    "give one of them",
    `${locate("config.yaml", text, "not_standard")}: workers/not_standard.ts: schema must be a ` +
    `Standard Schema v1 (zod, valibot, arktype…: a "~standard" with version 1 and validate()), ` +
    `got {} without "~standard"`,
  ]);
});

Deno.test("a worker whose default export is a plain object runs as under check", async () => {
  await using dir = await TempDir.create();
  // No HTTP listener: another test may hold the default port.
  const text = configText(["http:", "  listen: null"], [
    "worker: plain_object",
    "options: { label: mine }",
  ]);
  const path = await dir.writeConfig(text);
  const check = await runCli(["check", "-c", path], { entry: "fixture" });
  assert.deepEqual(check, {
    code: 0,
    stdout: `${path}: OK: 1 entry, workers: plain_object\n`,
    stderr: "",
  });
  await using run = spawnCli(["run", "-c", path], { writeDir: dir.path });
  await run.waitForLine((line) => line.includes('"starting"'));
  run.signal("SIGTERM");
  assert.equal((await run.status).code, 0, run.stderr.join("\n"));
});

Deno.test("the in-process test daemon makes the checks of check and run", async () => {
  const yaml = configText([], ["worker: test/worker", "options: { colour: red }"]);
  const worker = { options: { label: "x" }, handle() {} };
  await assert.rejects(
    startInProcess({ yaml, workers: { "test/worker": worker } }),
    (error) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(
        error.message,
        `${locate("test.yaml", yaml, "colour")}: workers[0].options.colour is not an option of ` +
          `workers/test/worker.ts (its options: label)`,
      );
      return true;
    },
  );
});
