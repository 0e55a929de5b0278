/**
 * Fuzz (soak): the fast part's config parser and decode path fuzz with far
 * more iterations (SOAK_FUZZ, default 100 000 each).
 */

import assert from "node:assert/strict";
import { fuzzConfigParser, fuzzDecodePath } from "../tests/reliability/fuzz.ts";
import { reportFigures } from "../tests/reliability/ledger.ts";
import { seedFromEnv } from "../tests/reliability/prng.ts";

const ITERATIONS = Number(Deno.env.get("SOAK_FUZZ") ?? 100_000);

Deno.test(`config parser fuzz, ${ITERATIONS} mutations`, async () => {
  const figures = await fuzzConfigParser(ITERATIONS, seedFromEnv(4_242));
  reportFigures("config_fuzz_soak", { ...figures, firstFailure: undefined });
  assert.equal(figures.failures, 0, figures.firstFailure ?? "");
});

Deno.test(`decode path fuzz, ${ITERATIONS} bodies`, async () => {
  reportFigures("decode_fuzz_soak", await fuzzDecodePath(ITERATIONS, seedFromEnv(4_242)));
});
