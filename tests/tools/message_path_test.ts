/**
 * docs/message_path.svg is drawn from the code: the committed picture is what
 * tools/message_path.ts draws now, and a step whose file no longer exports
 * its name fails the drawing.
 */

import assert from "node:assert/strict";
import { MESSAGE_PATH, MESSAGE_PATH_SVG, messagePathSvg } from "../../tools/message_path.ts";

Deno.test("docs/message_path.svg is the picture of today's files", async () => {
  assert.equal(
    await Deno.readTextFile(MESSAGE_PATH_SVG),
    await messagePathSvg(),
    "stale: redraw with deno run --allow-read --allow-write=docs tools/message_path.ts",
  );
});

Deno.test("every step of the path names a file and an export that exist", async () => {
  assert.ok(MESSAGE_PATH.length >= 8);
  const steps = MESSAGE_PATH as { word: string; file: string; exports: string; does: string }[];
  const saved = steps[0]!;
  steps[0] = { ...saved, exports: "NoSuchExport" };
  try {
    await assert.rejects(messagePathSvg(), /should export NoSuchExport/);
  } finally {
    steps[0] = saved;
  }
});

Deno.test("the glossary's words name the path's steps", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  assert.match(readme, /docs\/message_path\.svg/);
  for (const step of MESSAGE_PATH) {
    assert.ok(readme.includes(`**${step.word}**`), `the glossary defines "${step.word}"`);
  }
});
