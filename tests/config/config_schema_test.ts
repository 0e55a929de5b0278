/**
 * `nsqworker schema`: the committed config.schema.json is what the
 * declaration produces, and a real JSON Schema validator agrees with the
 * config loader on the fixture corpus.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "npm:ajv@8.20.0/dist/2020.js";
import { parse } from "yaml";
import { main } from "../../src/cli/cli.ts";
import { configJsonSchema, SCHEMA_FILE } from "../../src/config/json_schema.ts";

const REPO = new URL("../../", import.meta.url);
const REFUSED = new URL("../fixtures/configs/", import.meta.url);
const VALID = [
  new URL("config.yaml", REPO),
  new URL("../fixtures/config/documented_example.yaml", import.meta.url),
];

/**
 * Fixtures the loader refuses for reasons a schema cannot see: YAML syntax,
 * keys given twice, relations between keys or entries, what a variable
 * holds, the worker modules themselves, and names only known once
 * `topic_prefix` or `{topic}` is applied.
 */
const DAEMON_ONLY = new Set([
  // YAML syntax, keys given twice, an alias that contains itself
  "syntax_bad_escape.yaml",
  "syntax_bad_indent.yaml",
  "syntax_billion_laughs.yaml",
  "syntax_cyclic_alias.yaml",
  "syntax_duplicate_key.yaml",
  "syntax_tab_indent.yaml",
  "syntax_two_documents.yaml",
  "syntax_unclosed_flow.yaml",
  "syntax_unclosed_quote.yaml",
  "syntax_unknown_anchor.yaml",
  // the bounds of a duration written in words (the schema checks its form)
  "bounds_dedupe_ttl.yaml",
  "bounds_duration_overflow.yaml",
  "bounds_lookupd_poll.yaml",
  "bounds_output_buffer_timeout.yaml",
  "bounds_max_requeue_delay.yaml",
  "bounds_shutdown_timeout.yaml",
  "bounds_stall_timeout.yaml",
  "bounds_timeout_zero.yaml",
  // what a ${VAR} holds, or how it is written inside a value
  "env_bad_name.yaml",
  "env_default_wrong_type.yaml",
  "env_in_address.yaml",
  "env_unclosed.yaml",
  "env_unset.yaml",
  // one key against another
  "bounds_requeue_over_max.yaml",
  "listen_ipv6_any_no_token.yaml",
  "listen_public_empty_token.yaml",
  "listen_public_no_token.yaml",
  "path_no_address.yaml",
  "path_nsqd_http_unknown_nsqd.yaml",
  "path_tls_cert_without_key.yaml",
  // names known only once topic_prefix and {topic} are applied
  "name_dead_letter_too_long.yaml",
  "name_prefix_too_long.yaml",
  // entries against each other, and the worker modules themselves
  "name_duplicate_entry.yaml",
  "worker_missing_module.yaml",
  "worker_option_type.yaml",
  "worker_option_unknown.yaml",
  "worker_options_two_problems.yaml",
  // files on disk
  "tls_ca_missing.yaml",
  "tls_key_is_directory.yaml",
]);

function validator() {
  const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true });
  return ajv.compile(configJsonSchema());
}

Deno.test("config.schema.json is what `nsqworker schema` prints, and config.yaml names it", async () => {
  let printed = "";
  const code = await main(["schema"], { out: (t) => printed += t, err: (t) => printed += t });
  assert.equal(code, 0);
  const committed = await Deno.readTextFile(new URL(SCHEMA_FILE, REPO));
  assert.equal(
    committed,
    printed,
    `${SCHEMA_FILE} is stale: run deno run main.ts schema > ${SCHEMA_FILE}`,
  );
  const firstLine = (await Deno.readTextFile(new URL("config.yaml", REPO))).split("\n", 1)[0];
  assert.equal(firstLine, `# yaml-language-server: $schema=./${SCHEMA_FILE}`);
});

Deno.test("the schema accepts every valid config fixture", async () => {
  const validate = validator();
  for (const url of VALID) {
    const ok = validate(parse(await Deno.readTextFile(url)));
    assert.ok(ok, `${url.pathname}: ${JSON.stringify(validate.errors, null, 2)}`);
  }
});

Deno.test("the schema refuses the refused fixtures, except those only the loader can judge", async () => {
  const validate = validator();
  const accepted: string[] = [];
  const parsed: string[] = [];
  for await (const entry of Deno.readDir(REFUSED)) {
    let document: unknown;
    try {
      document = parse(await Deno.readTextFile(new URL(entry.name, REFUSED)));
    } catch {
      assert.ok(DAEMON_ONLY.has(entry.name), `${entry.name}: not YAML, so not for the schema`);
      continue;
    }
    parsed.push(entry.name);
    if (validate(document)) accepted.push(entry.name);
  }
  const stale = parsed.filter((name) => DAEMON_ONLY.has(name) && !accepted.includes(name));
  assert.deepEqual(stale, [], "listed as for the loader only, yet the schema refuses them");
  const unexpected = accepted.filter((name) => !DAEMON_ONLY.has(name));
  assert.deepEqual(unexpected, [], "refused by the loader, accepted by the schema");
});
