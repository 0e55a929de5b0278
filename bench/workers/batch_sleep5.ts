/**
 * The batch-bound worker: each `handleBatch` call of up to 500 messages
 * waits 5 ms without using the CPU, as a bulk insert's round trip would.
 * The bench sets it against `sleep5.ts` (5 ms per message through `handle`)
 * at the same max_in_flight.
 */
import { defineWorker } from "../../src/mod.ts";

export default defineWorker<Uint8Array>({
  decode: "bytes",
  // A partial batch (the tail of a drain) waits at most 50 ms for more.
  batch: { size: 500, wait: 50 },
  async handleBatch() {
    await new Promise((resolve) => setTimeout(resolve, 5));
  },
});
