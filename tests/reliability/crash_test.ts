/**
 * Crash (fast part): `nsqworker run` SIGKILLed three times at random moments
 * while a few thousand messages are published; nothing lost, duplicates
 * bounded by what was in flight. The soak (`deno task soak`) runs the same
 * scenario with tens of thousands of messages and ten kills.
 */

import { runCrashScenario } from "./crash.ts";
import { seedFromEnv } from "./prng.ts";

Deno.test("SIGKILLed three times under load: every id handled, duplicates within max_in_flight × kills", async () => {
  await runCrashScenario({
    messages: 3_000,
    kills: 3,
    ratePerSec: 1_000,
    maxInFlight: 20,
    sleepMs: 10,
    killAfterMs: [50, 1_000],
    seed: seedFromEnv(7),
    finishTimeoutMs: 30_000,
  });
});
