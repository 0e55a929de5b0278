/**
 * The ceiling of the handler-bound row set by the runtime alone: the
 * `sleep5` worker's wait (`setTimeout` 5 ms) run `max_in_flight` (500) at a
 * time, each restarted as soon as it ends, with no daemon, no nsqd and no
 * message. Deno's timers fire late (about 6 ms for 5 ms, alone), so this is
 * below the ideal of 100,000 a second; the daemon's row is best read
 * against it.
 *
 * ```sh
 * deno run bench/timer_ceiling.ts [--concurrency 500] [--ms 5] [--seconds 3]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Waits completed per second, and the mean wait, of `concurrency` loops of `ms` sleeps. */
export async function timerCeiling(
  concurrency: number,
  ms: number,
  seconds: number,
): Promise<{ perSecond: number; meanWaitMs: number }> {
  let done = 0;
  let waited = 0;
  const end = performance.now() + seconds * 1000;
  async function loop(): Promise<void> {
    while (performance.now() < end) {
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, ms));
      waited += performance.now() - started;
      done++;
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { perSecond: done / ((performance.now() - started) / 1000), meanWaitMs: waited / done };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      concurrency: { type: "string", default: "500" },
      ms: { type: "string", default: "5" },
      seconds: { type: "string", default: "3" },
    },
  });
  const concurrency = Number(values.concurrency);
  const ms = Number(values.ms);
  const ideal = (concurrency * 1000) / ms;
  const { perSecond, meanWaitMs } = await timerCeiling(concurrency, ms, Number(values.seconds));
  console.log(
    `${concurrency} × setTimeout ${ms} ms: ${Math.round(perSecond)} a second, ` +
      `${(perSecond / ideal).toFixed(2)} of the ideal ${ideal}; mean wait ${
        meanWaitMs.toFixed(2)
      } ms`,
  );
}
