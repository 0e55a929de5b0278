/**
 * Crash (soak): `nsqworker run` SIGKILLed ten times at random moments while
 * fifty thousand messages are published; every id handled at least once,
 * duplicates within `max_in_flight × kills`. RELIABILITY_SEED replays a run.
 */

import { runCrashScenario } from "../tests/reliability/crash.ts";
import { seedFromEnv } from "../tests/reliability/prng.ts";

Deno.test("SIGKILLed ten times under load: 50 000 ids, none lost", async () => {
  await runCrashScenario({
    messages: 50_000,
    kills: 10,
    ratePerSec: 2_000,
    maxInFlight: 50,
    sleepMs: 10,
    killAfterMs: [100, 3_000],
    seed: seedFromEnv(1_000),
    finishTimeoutMs: 120_000,
  });
});
