/**
 * The README tells the truth: its worker example is the real
 * `workers/demo/pageview.ts`, and every TypeScript block in it type-checks
 * and lints.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_DIR } from "./helpers/daemon_process.ts";

const README = join(REPO_DIR, "README.md");

/** Each fenced TypeScript block: its info string and its text. */
async function typeScriptBlocks(): Promise<{ info: string; text: string }[]> {
  const markdown = await Deno.readTextFile(README);
  return [...markdown.matchAll(/^```(ts\b[^\n]*)\n([\s\S]*?)^```$/gm)].map((match) => ({
    info: match[1]!,
    text: match[2]!,
  }));
}

async function deno(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_DIR,
    env: { NO_COLOR: "1" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  return { code, output: text.decode(stdout) + text.decode(stderr) };
}

Deno.test("the README's worker example is workers/demo/pageview.ts, byte for byte", async () => {
  const file = await Deno.readTextFile(join(REPO_DIR, "workers", "demo", "pageview.ts"));
  const examples = (await typeScriptBlocks()).filter((block) =>
    block.text.includes("defineWorker")
  );
  assert.equal(examples.length, 1, "one worker example");
  assert.equal(examples[0]!.text, file);
});

Deno.test("every TypeScript block of the README type-checks and lints", async () => {
  // The worker example imports "../../src/mod.ts" as its file does, which does
  // not resolve from README.md: it is marked `ts ignore` for the doc check, and
  // is type-checked as workers/demo/pageview.ts (the test above).
  const check = await deno(["check", "--doc-only", "README.md"]);
  assert.equal(check.code, 0, check.output);
  const blocks = await typeScriptBlocks();
  assert.ok(blocks.length > 0);
  for (const [i, block] of blocks.entries()) {
    const lint = await deno(["lint", "--ext=ts", "-"], block.text);
    assert.equal(lint.code, 0, `README.md TypeScript block ${i + 1}:\n${lint.output}`);
  }
});

Deno.test("the Go version the README asks for is tools/nsq/go.mod's go line", async () => {
  const goMod = await Deno.readTextFile(join(REPO_DIR, "tools", "nsq", "go.mod"));
  const goLine = /^go (\d+\.\d+)$/m.exec(goMod)?.[1];
  assert.ok(goLine, "go.mod has a go line");
  const readme = await Deno.readTextFile(README);
  const asked = [...readme.matchAll(/\bGo (\d+\.\d+)\+/g)].map((match) => match[1]);
  assert.ok(asked.length > 0, "the README names a Go version");
  assert.deepEqual(new Set(asked), new Set([goLine]));
  const nsqBin = await Deno.readTextFile(join(REPO_DIR, "tools", "nsq_bin.ts"));
  assert.match(nsqBin, new RegExp(`install Go ${goLine.replace(".", "\\.")} or newer`));
});
