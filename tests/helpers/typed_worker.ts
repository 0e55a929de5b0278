/**
 * The source of a worker whose `body` is typed by its zod schema as
 * `{ event_id?: string; clicks: number }`, and whose handler reads `access`
 * (`body.clicks`, or a misspelt `body.clickz`) as a number. Tests write it to
 * a temporary folder: a module that must not compile cannot sit in tests/,
 * which `deno check tests/` checks.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_DIR } from "./daemon_process.ts";

const MOD = pathToFileURL(join(REPO_DIR, "src", "mod.ts")).href;

/** The module's text; `access` is the expression the handler reads. */
export function typedWorker(access: string): string {
  return [
    `import { z } from "zod";`,
    `import { defineWorker } from "${MOD}";`,
    "",
    "export default defineWorker({",
    "  schema: z.object({ event_id: z.string().optional(), clicks: z.number() }),",
    "  dedupeKey: (body) => body.event_id,",
    "  handle(body) {",
    `    const clicks: number = ${access};`,
    "    console.log(clicks);",
    "  },",
    "});",
    "",
  ].join("\n");
}
