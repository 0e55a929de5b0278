/**
 * The malformed config corpus of tests/fixtures/configs/: each file says
 * why it is wrong (`# why:`) and what the operator must be told
 * (`# expect: <file>:<line>:<col>: <message>`, one line per issue). Each is
 * refused by `check` and `run` with exit 2, every expected issue at its
 * place, and no stack trace: all through `main()` in process, and a handful
 * through `deno run main.ts` as well.
 */

import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/cli.ts";
import { runCli } from "../helpers/daemon_process.ts";
import { reportFigures } from "./ledger.ts";

const CORPUS = fileURLToPath(new URL("../fixtures/configs/", import.meta.url));

interface Case {
  readonly path: string;
  readonly why: string;
  /** `<file>:<line>:<col>: <message>` (or `<file>: <message>`) as the CLI must print it. */
  readonly expect: readonly string[];
}

async function corpus(): Promise<Case[]> {
  const cases: Case[] = [];
  for await (const item of Deno.readDir(CORPUS)) {
    if (!item.name.endsWith(".yaml")) continue;
    const path = join(CORPUS, item.name);
    const text = await Deno.readTextFile(path);
    cases.push({
      path,
      why: /^# why: (.*)$/m.exec(text)?.[1] ?? "",
      expect: [...text.matchAll(/^# expect: (.*)$/gm)].map((match) => match[1]!),
    });
  }
  return cases.sort((a, b) => a.path.localeCompare(b.path));
}

async function runMain(args: readonly string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { out: (t) => stdout += t, err: (t) => stderr += t });
  return { code, stdout, stderr };
}

/** Exit 2, nothing on stdout, only `file:line:col: …` lines, each expected issue among them. */
function assertRefused(
  c: Case,
  command: string,
  result: { code: number; stdout: string; stderr: string },
) {
  const name = `${command} ${basename(c.path)} (${c.why})`;
  assert.equal(result.code, 2, `${name}: exit ${result.code}\n${result.stderr}`);
  assert.equal(result.stdout, "", name);
  assert.ok(!result.stderr.includes("    at "), `${name}: a stack trace\n${result.stderr}`);
  const lines = result.stderr.trimEnd().split("\n");
  const unplacedAllowed = c.expect.some((e) => !/^[^:]+:\d+:\d+: /.test(e));
  for (const line of lines) {
    const placed = line.startsWith(`${c.path}:`) && /^:\d+:\d+: \S/.test(line.slice(c.path.length));
    assert.ok(
      placed || (unplacedAllowed && line.startsWith(`${c.path}: `)),
      `${name}: not file:line:col: ${line}`,
    );
  }
  for (const expected of c.expect) {
    assert.ok(
      lines.some((line) =>
        line.startsWith(join(CORPUS, expected.split(" ")[0]!)) &&
        line.includes(expected.slice(expected.indexOf(" ") + 1))
      ),
      `${name}: expected ${expected}\ngot:\n${result.stderr}`,
    );
  }
}

Deno.test("every malformed config of the corpus is refused with exit 2, its location and no stack trace", async (t) => {
  const cases = await corpus();
  assert.ok(cases.length >= 50, `${cases.length} configs in the corpus`);
  let refused = 0;
  let issues = 0;
  for (const c of cases) {
    assert.ok(c.why !== "" && c.expect.length > 0, `${c.path} needs # why: and # expect: lines`);
    const passed = await t.step(basename(c.path), async () => {
      const checked = await runMain(["check", "-c", c.path]);
      assertRefused(c, "check", checked);
      // Only once check refused it: a config run accepts would start a daemon.
      assertRefused(c, "run", await runMain(["run", "-c", c.path]));
      issues += checked.stderr.trimEnd().split("\n").length;
    });
    if (passed) refused++;
  }
  reportFigures("config_corpus", { tried: cases.length, refused_clearly: refused, issues });
});

Deno.test("a handful of the corpus through deno run main.ts check: the same refusal", async () => {
  const names = [
    "syntax_unclosed_flow",
    "bounds_max_in_flight_zero",
    "env_unset",
    "listen_public_no_token",
    "worker_parent_dir",
    "worker_missing_module",
  ];
  const cases = (await corpus()).filter((c) => names.includes(basename(c.path, ".yaml")));
  assert.equal(cases.length, names.length);
  await Promise.all(cases.map(async (c) => {
    const child = await runCli(["check", "-c", c.path], { entry: "main" });
    assertRefused(c, "deno run main.ts check", child);
    assert.deepEqual(child, await runMain(["check", "-c", c.path]));
  }));
});
