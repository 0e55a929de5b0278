/**
 * The command line: each case runs both in-process, through `main()` with a
 * capturing output, and as `deno run main.ts` with named permissions, and the
 * two must agree byte for byte.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { CLI_FLAGS, type CliOverrides, main } from "../../src/cli/cli.ts";
import { NSQJS_VERSION } from "../../src/nsq/nsqjs.ts";
import { VERSION } from "../../src/version.ts";
import { type CliResult, REPO_DIR, runCli, TempDir } from "../helpers/daemon_process.ts";

const VALID_CONFIG = join(REPO_DIR, "tests", "fixtures", "config", "documented_example.yaml");
const FIXTURE_WORKERS = new URL("../fixtures/workers/", import.meta.url);

/** `main()` in this process, its output captured. */
async function runMain(args: readonly string[], overrides?: CliOverrides): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    out: (text) => stdout += text,
    err: (text) => stderr += text,
  }, overrides);
  return { code, stdout, stderr };
}

/**
 * Runs `args` in-process and as a child process of `main.ts` (working
 * directory `cwd`, no write permission), asserts that both gave the same
 * result, and returns it. Relative paths in `args` resolve against `cwd`.
 */
async function runBoth(args: readonly string[], cwd: string = REPO_DIR): Promise<CliResult> {
  const child = await runCli(args, { entry: "main", cwd });
  const absolute = args.map((arg, i) => args[i - 1] === "-c" ? resolve(cwd, arg) : arg);
  const inProcess = await runMain(absolute);
  const prefix = join(cwd, "/");
  const unprefixed = (result: CliResult) => ({
    ...result,
    stdout: result.stdout.replaceAll(prefix, ""),
    stderr: result.stderr.replaceAll(prefix, ""),
  });
  assert.deepEqual(unprefixed(inProcess), unprefixed(child), "main() and main.ts disagree");
  return child;
}

/** No stack trace: config and usage errors are for operators. */
function assertNoStack(text: string): void {
  assert.ok(!text.includes("    at "), `stack trace in:\n${text}`);
}

/** `file:line:col` of the first occurrence of `needle` in `text` (1-based). */
function locate(file: string, text: string, needle: string): string {
  const offset = text.indexOf(needle);
  assert.ok(offset >= 0, `${needle} not in ${file}`);
  const before = text.slice(0, offset).split("\n");
  return `${file}:${before.length}:${before.at(-1)!.length + 1}`;
}

Deno.test("check accepts a valid config and loads its workers", async () => {
  const result = await runBoth(["check", "-c", VALID_CONFIG]);
  assert.deepEqual(result, {
    code: 0,
    stdout: `${VALID_CONFIG}: OK: 1 entry, workers: demo/pageview\n`,
    stderr: "",
  });
});

Deno.test("a broken config exits 2 with file:line:col and no stack trace", async (t) => {
  await using dir = await TempDir.create();
  const cases = {
    "a value out of bounds": [
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150]",
      "workers:",
      "  - topic: pageviews",
      "    channel: counter",
      "    worker: demo/pageview",
      "    max_in_flight: ten",
      "",
    ],
    "invalid YAML": [
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150",
      "workers: []",
      "",
    ],
  };
  const expected = {
    "a value out of bounds": [
      `broken.yaml:7:20: workers[0].max_in_flight must be an integer from 1 to 2500, got "ten"`,
    ],
    "invalid YAML": [/^broken\.yaml:3:1: invalid YAML: /],
  };
  for (const [name, lines] of Object.entries(cases)) {
    await t.step(name, async () => {
      await dir.writeConfig(lines.join("\n"), "broken.yaml");
      for (const command of ["check", "run"]) {
        const { code, stdout, stderr } = await runBoth([command, "-c", "broken.yaml"], dir.path);
        assert.equal(code, 2, stderr);
        assert.equal(stdout, "");
        assertNoStack(stderr);
        const reported = stderr.trimEnd().split("\n");
        const wanted = expected[name as keyof typeof expected];
        assert.equal(reported.length, wanted.length, stderr);
        for (const [i, want] of wanted.entries()) {
          if (typeof want === "string") assert.equal(reported[i], want);
          else assert.match(reported[i]!, want);
        }
      }
    });
  }
});

Deno.test("a worker missing from workers/ exits 2 at the line of its worker: key", async () => {
  await using dir = await TempDir.create();
  const text = [
    "nsq:",
    "  nsqd_tcp_addresses: [127.0.0.1:4150]",
    "workers:",
    "  - topic: pageviews",
    "    channel: counter",
    "    worker: demo/pageview",
    "  - topic: clicks",
    "    channel: counter",
    "    worker: nope/missing",
    "",
  ].join("\n");
  await dir.writeConfig(text, "missing.yaml");
  const at = locate("missing.yaml", text, "nope/missing");
  const results = await Promise.all(
    ["check", "run"].map((command) => runBoth([command, "-c", "missing.yaml"], dir.path)),
  );
  for (const result of results) {
    assert.deepEqual(result, {
      code: 2,
      stdout: "",
      stderr: `${at}: workers/nope/missing.ts: no such worker module\n`,
    });
  }
});

Deno.test("run and check on a config that does not exist exit 2", async () => {
  await using dir = await TempDir.create();
  const commands = ["run", "check", "list"];
  const results = await Promise.all(
    commands.map((command) => runBoth([command, "-c", "absent.yaml"], dir.path)),
  );
  for (const { code, stdout, stderr } of results) {
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /^absent\.yaml: cannot read file: .+\n$/);
    assertNoStack(stderr);
  }
});

Deno.test("version prints the nsqworker, Deno and nsqjs versions", async () => {
  assert.match(NSQJS_VERSION, /^\d+\.\d+\.\d+$/);
  const results = await Promise.all(
    [["version"], ["--version"], ["-V"]].map((args) => runBoth(args)),
  );
  for (const result of results) {
    assert.deepEqual(result, {
      code: 0,
      stdout: `nsqworker ${VERSION}\ndeno ${Deno.version.deno}\nnsqjs ${NSQJS_VERSION}\n`,
      stderr: "",
    });
  }
});

Deno.test("--help prints the usage and exits 0", async () => {
  const results = await Promise.all(
    [["--help"], ["-h"], ["help"], ["check", "--help"]].map((args) => runBoth(args)),
  );
  for (const { code, stdout, stderr } of results) {
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.match(stdout, /^nsqworker \S+ — a worker daemon for NSQ\n/);
    for (const command of ["run", "check", "list", "version", "--help"]) {
      assert.match(stdout, new RegExp(`^  nsqworker (\\[run\\]|${command})`, "m"));
    }
  }
});

Deno.test("--help: its usage lines name every flag the command line accepts", async () => {
  const { code, stdout } = await runMain(["--help"]);
  assert.equal(code, 0);
  const usage = stdout.slice(stdout.indexOf("Usage:"), stdout.indexOf("Options:"));
  const flags = Object.entries(CLI_FLAGS).flatMap(([name, flag]) => [
    `--${name}`,
    ...("short" in flag ? [`-${flag.short}`] : []),
  ]);
  const missing = flags.filter((flag) => !new RegExp(`(^|[\\s\\[|])${flag}\\b`).test(usage));
  assert.deepEqual(missing, [], `the usage lines leave out flags:\n${usage}`);
  const described = [
    ...stdout.slice(stdout.indexOf("Options:")).matchAll(/^ +(?:-\w, )?(--[\w-]+)/gm),
  ]
    .map((match) => match[1]!);
  assert.deepEqual(
    described.filter((flag) => !flags.includes(flag)),
    [],
    "options it does not take",
  );
});

Deno.test("an unknown command, flag or extra word exits 2 with a pointer to --help", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"; expected one of run, check, list/],
    [["--bogus"], /--bogus/],
    [["check", "-x"], /-x/],
    [["check", "list"], /expected one command, got check list/],
    [["run", "--log-level", "loud"], /--log-level must be one of debug, info, warning, error/],
    [["check", "-c"], /-c/],
  ];
  const results = await Promise.all(cases.map(([args]) => runBoth(args)));
  for (const [i, { code, stdout, stderr }] of results.entries()) {
    const [args, reason] = cases[i]!;
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.match(stderr, /^nsqworker: /);
    assert.match(stderr, reason);
    assert.match(stderr, /Run nsqworker --help for usage\.\n$/);
    assertNoStack(stderr);
  }
});

Deno.test("list prints every entry with its settings and no secret", async () => {
  await using dir = await TempDir.create();
  await dir.writeConfig(
    [
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150]",
      "  topic_prefix: staging.",
      "  auth_secret: s3cr3t-auth",
      "http:",
      "  token: s3cr3t-token",
      "defaults:",
      "  max_attempts: 3",
      "workers:",
      "  - topic: pageviews",
      "    channel: counter",
      "    worker: demo/pageview",
      "    max_in_flight: 10",
      "    options: { label: demo }",
      "  - topic: clicks",
      "    channel: archive",
      "    worker: nope/not-loaded-by-list",
      "    dead_letter_topic: null",
      "    rate_limit: 200/s",
      "",
    ].join("\n"),
  );
  const { code, stdout, stderr } = await runBoth(["list", "-c", "config.yaml"], dir.path);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.ok(!stdout.includes("s3cr3t"), stdout);
  const blocks = stdout.trimEnd().split("\n\n");
  assert.equal(blocks.length, 2, stdout);
  assert.match(blocks[0]!, /^staging\.pageviews\/counter → demo\/pageview\n/);
  assert.match(blocks[0]!, /^ {2}max_in_flight +10$/m);
  assert.match(blocks[0]!, /^ {2}max_attempts +3$/m);
  assert.match(blocks[0]!, /^ {2}dead_letter_topic +staging\.pageviews\.dead$/m);
  assert.match(blocks[0]!, /^ {2}options +\{"label":"demo"\}$/m);
  assert.match(blocks[1]!, /^staging\.clicks\/archive → nope\/not-loaded-by-list\n/);
  assert.match(blocks[1]!, /^ {2}max_in_flight +50$/m);
  assert.match(blocks[1]!, /^ {2}dead_letter_topic +none/m);
  assert.match(blocks[1]!, /^ {2}rate_limit +200 per 1s$/m);
});

Deno.test("check loads workers from overrides.workersDir and checks their options", async () => {
  await using dir = await TempDir.create();
  const config = (options: string) =>
    [
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150]",
      "workers:",
      "  - topic: events",
      "    channel: test",
      "    worker: record",
      `    options: ${options}`,
      "",
    ].join("\n");
  const path = await dir.writeConfig(config("{ out: /tmp/out.txt, sleep_ms: 5 }"));
  const overrides = { workersDir: FIXTURE_WORKERS };
  assert.deepEqual(await runMain(["check", "-c", path], overrides), {
    code: 0,
    stdout: `${path}: OK: 1 entry, workers: record\n`,
    stderr: "",
  });
  // Without the override, record is not a worker of workers/.
  assert.equal((await runMain(["check", "-c", path])).code, 2);

  const text = config("{ out: /tmp/out.txt, sleep_ms: soon }");
  await dir.writeConfig(text);
  const { code, stdout, stderr } = await runMain(["check", "-c", path], overrides);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    `${locate(path, text, "soon")}: workers[0].options.sleep_ms must be a number like the ` +
      `default of workers/record.ts (0), got "soon"\n`,
  );
});

/** `deno run main.ts ARGS` with exactly `flags`, outside a terminal, as a newcomer first tries it. */
async function runWithFlags(flags: readonly string[], args: readonly string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "main.ts", ...args],
    cwd: REPO_DIR,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

Deno.test("a missing permission is one clear line and exit 2, without a prompt", async () => {
  for (
    const [flags, missing] of [
      [[], "--allow-read --allow-env"],
      [["--allow-read"], "--allow-env"],
      [["--allow-env"], "--allow-read"],
    ] as const
  ) {
    for (const command of ["check", "list"]) {
      const result = await runWithFlags(flags, [command]);
      assert.equal(result.code, 2, `${command} with ${flags}: ${result.stderr}`);
      assert.equal(result.stdout, "");
      assert.equal(
        result.stderr,
        `nsqworker ${command}: missing permission ${missing}; run it as ` +
          `\`deno run --allow-read --allow-env main.ts ${command}\`` +
          (command === "check" ? " or `deno task check`" : "") + "\n",
      );
    }
  }
});
