/**
 * A config from YAML text, read the way the daemon reads its file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatIssue } from "../../src/config/config_error.ts";
import { draftConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";

/** The config of `text` (named `file` in messages); fails the test listing its issues if it has any. */
export function validConfig(
  text: string,
  file = "test.yaml",
  env: Readonly<Record<string, string>> = {},
): Config {
  const draft = draftConfig(text, file, env);
  assert.deepEqual(draft.issues.map(formatIssue), [], `${file} must be a valid config`);
  return draft.config!;
}
