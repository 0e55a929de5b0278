/**
 * The Markdown files tell the truth: every TypeScript block in them
 * type-checks and lints, a block that stands for a file of the repository
 * (```` ```ts ignore PATH ````) is that file byte for byte, the Go version they
 * ask for is the one the NSQ build needs, and every relative link leads to a
 * file and a heading that exist.
 */

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { REPO_DIR } from "./helpers/daemon_process.ts";

/** Folders that hold no documentation of the project's own. */
const SKIPPED_DIRS = new Set([".git", ".cache", "dist", "node_modules"]);

/** Every Markdown file of the repository, as a path relative to it. */
async function markdownFiles(dir = REPO_DIR): Promise<string[]> {
  const files: string[] = [];
  for await (const item of Deno.readDir(dir)) {
    const path = join(dir, item.name);
    if (item.isDirectory && !SKIPPED_DIRS.has(item.name)) files.push(...await markdownFiles(path));
    if (item.isFile && item.name.endsWith(".md")) files.push(relative(REPO_DIR, path));
  }
  return files.sort();
}

/** A fenced code block: its info string, its text and the line it starts on. */
interface Block {
  readonly info: string;
  readonly text: string;
  readonly line: number;
}

/**
 * The fenced code blocks of a Markdown text and the text outside them. A fence
 * is three or more backticks at the start of a line (up to three spaces in),
 * closed by a line of at least as many.
 */
function parseMarkdown(markdown: string): { blocks: Block[]; prose: string[] } {
  const blocks: Block[] = [];
  const prose: string[] = [];
  let open: { fence: string; info: string; line: number; lines: string[] } | null = null;
  for (const [i, line] of markdown.split("\n").entries()) {
    if (open === null) {
      const start = /^ {0,3}(`{3,})([^`]*)$/.exec(line);
      if (start) open = { fence: start[1]!, info: start[2]!.trim(), line: i + 1, lines: [] };
      else prose.push(line);
    } else if (new RegExp(`^ {0,3}${open.fence}\`*\\s*$`).test(line)) {
      blocks.push({
        info: open.info,
        text: open.lines.map((l) => `${l}\n`).join(""),
        line: open.line,
      });
      open = null;
    } else {
      open.lines.push(line);
    }
  }
  return { blocks, prose };
}

async function read(file: string) {
  return parseMarkdown(await Deno.readTextFile(join(REPO_DIR, file)));
}

/** The TypeScript blocks of every Markdown file, each with its file. */
async function typeScriptBlocks(): Promise<(Block & { file: string })[]> {
  const all = [];
  for (const file of await markdownFiles()) {
    const { blocks } = await read(file);
    all.push(...blocks.filter((b) => /^ts\b/.test(b.info)).map((b) => ({ ...b, file })));
  }
  return all;
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

Deno.test("the Markdown files found are the project's documentation", async () => {
  const files = await markdownFiles();
  for (const expected of ["README.md", "CONTRIBUTING.md", "BENCHMARKS.md", "docs/workers.md"]) {
    assert.ok(files.includes(expected), `${expected} among ${files.join(", ")}`);
  }
});

Deno.test("a `ts ignore PATH` block is the file at PATH, byte for byte", async () => {
  const copies = (await typeScriptBlocks()).filter((block) => /^ts\s+ignore\b/.test(block.info));
  assert.ok(copies.length > 0, "at least one block copies a file");
  for (const block of copies) {
    const where = `${block.file}:${block.line}`;
    // A block that is neither checked nor a copy could say anything.
    const path = /^ts\s+ignore\s+(\S+)$/.exec(block.info)?.[1];
    assert.ok(path, `${where}: \`${block.info}\` names no file; mark it \`ts\` to type-check it`);
    const file = await Deno.readTextFile(join(REPO_DIR, path));
    assert.equal(block.text, file, `${where}: the block differs from ${path}`);
  }
  assert.ok(
    copies.some((block) => block.info.endsWith(" workers/demo/pageview.ts")),
    "the demo worker is shown",
  );
});

Deno.test("every TypeScript block of every Markdown file type-checks and lints", async () => {
  const blocks = (await typeScriptBlocks()).filter((block) => !/^ts\s+ignore\b/.test(block.info));
  assert.ok(blocks.length > 0);
  const files = [...new Set(blocks.map((block) => block.file))];
  const check = await deno(["check", "--doc-only", ...files]);
  assert.equal(check.code, 0, check.output);
  for (const block of blocks) {
    const lint = await deno(["lint", "--ext=ts", "-"], block.text);
    assert.equal(lint.code, 0, `${block.file}:${block.line}:\n${lint.output}`);
  }
});

Deno.test("the Go version the Markdown files ask for is tools/nsq/go.mod's go line", async () => {
  const goMod = await Deno.readTextFile(join(REPO_DIR, "tools", "nsq", "go.mod"));
  const goLine = /^go (\d+\.\d+)$/m.exec(goMod)?.[1];
  assert.ok(goLine, "go.mod has a go line");
  const asked = new Set<string>();
  for (const file of await markdownFiles()) {
    const text = await Deno.readTextFile(join(REPO_DIR, file));
    for (const match of text.matchAll(/\bGo (\d+\.\d+)\+/g)) asked.add(match[1]!);
  }
  assert.ok(asked.size > 0, "the Markdown files name a Go version");
  assert.deepEqual(asked, new Set([goLine]));
  const nsqBin = await Deno.readTextFile(join(REPO_DIR, "tools", "nsq_bin.ts"));
  assert.match(nsqBin, new RegExp(`install Go ${goLine.replace(".", "\\.")} or newer`));
});

/** The anchors GitHub gives the headings of a Markdown text, duplicates numbered. */
function anchors(prose: readonly string[]): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose) {
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** The targets of the inline links and images of some prose, code spans left out. */
function linkTargets(prose: readonly string[]): string[] {
  // A code span may run over a line break, so the spans go before the lines are looked at.
  const text = prose.join("\n").replace(/(`+)[\s\S]+?\1/g, "");
  return [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]!);
}

Deno.test("every relative link of every Markdown file leads to a file and heading that exist", async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of await markdownFiles()) {
    const { prose } = await read(file);
    for (const target of linkTargets(prose)) {
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:: not this repository's
      checked++;
      const [path = "", anchor] = target.split("#");
      const resolved = path === "" ? join(REPO_DIR, file) : join(REPO_DIR, dirname(file), path);
      const found = await Deno.stat(resolved).then(() => true, () => false);
      if (!found) {
        problems.push(`${file}: ${target}: no file ${relative(REPO_DIR, resolved)}`);
      } else if (anchor !== undefined && resolved.endsWith(".md")) {
        const headings = anchors(parseMarkdown(await Deno.readTextFile(resolved)).prose);
        if (!headings.has(anchor)) {
          problems.push(`${file}: ${target}: no heading #${anchor} (${[...headings].join(", ")})`);
        }
      }
    }
  }
  assert.ok(checked > 0, "some relative links were checked");
  assert.deepEqual(problems, []);
});
