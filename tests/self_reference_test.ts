/**
 * The project speaks of itself: no tracked file cites a document outside the
 * repository (a contract the code was built to) by section number.
 */

import assert from "node:assert/strict";

Deno.test("no file cites an outside document by its section numbers", async () => {
  const files = new TextDecoder().decode(
    (await new Deno.Command("git", { args: ["ls-files"], cwd: new URL("..", import.meta.url) })
      .output()).stdout,
  ).split("\n").filter((file) => /\.(ts|mjs|md|yaml|json|service)$/.test(file));
  assert.ok(files.length > 100, `git listed ${files.length} files`);
  const found: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(`../${file}`, import.meta.url));
    // Spelled in two parts so that this file does not match itself.
    const cite = new RegExp("SPEC" + " ?§", "g");
    for (const match of text.matchAll(cite)) {
      const line = text.slice(0, match.index).split("\n").length;
      found.push(`${file}:${line}`);
    }
  }
  assert.deepEqual(found, []);
});
