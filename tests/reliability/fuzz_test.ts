/**
 * Fuzz (fast part): mutated configs through the config parser and random
 * bodies through the decode path, a few thousand each with a fixed seed
 * (`RELIABILITY_SEED` replays another). The soak runs far more.
 */

import assert from "node:assert/strict";
import { fuzzConfigParser, fuzzDecodePath } from "./fuzz.ts";
import { reportFigures } from "./ledger.ts";
import { seedFromEnv } from "./prng.ts";

Deno.test("config parser fuzz: every mutation gives a frozen Config or a ConfigError with placed issues", async () => {
  const figures = await fuzzConfigParser(4_000, seedFromEnv(20_261_127));
  reportFigures("config_fuzz", { ...figures, firstFailure: undefined });
  assert.equal(figures.failures, 0, figures.firstFailure ?? "");
  assert.ok(figures.refused > figures.iterations / 4, "most mutations break the config");
  assert.ok(figures.configs > 0, "some mutations keep it valid");
  assert.ok(figures.slowestMs < 1_000, `one parse took ${figures.slowestMs} ms`);
});

Deno.test("decode path fuzz: random bodies decode or fail with a DecodeError; the runner always gives an outcome", async () => {
  const figures = await fuzzDecodePath(4_000, seedFromEnv(20_261_127));
  reportFigures("decode_fuzz", figures);
  assert.ok(figures.decodeErrors > 0 && figures.decoded > 0);
  assert.ok(figures.outcomes.finish! > 0 && figures.outcomes.dead! > 0);
});
