/**
 * The latency worker: each body is `{"t": <publish time>}` in microseconds
 * since the epoch; the handler keeps receive time minus publish time, and
 * `teardown()` writes them all to `options.out` as a JSON array of
 * microseconds.
 */
import { defineWorker } from "../../src/mod.ts";

type LatencyOptions = { out: string };

const latencies: number[] = [];

/** Microseconds since the epoch, with sub-millisecond precision. */
function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export default defineWorker<{ t: number }, LatencyOptions>({
  options: { out: "" },
  decode: "json",
  setup(ctx) {
    if (ctx.options.out === "") throw new Error("options.out must name the file to write");
  },
  handle(body) {
    latencies.push(nowMicros() - body.t);
  },
  async teardown(ctx) {
    await Deno.writeTextFile(ctx.options.out, JSON.stringify(latencies.map(Math.round)));
  },
});
