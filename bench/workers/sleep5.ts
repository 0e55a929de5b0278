/**
 * The handler-bound worker: each message waits 5 ms without using the CPU,
 * as a handler that awaits an API would. With max_in_flight 500 the ideal is
 * 500 / 5 ms = 100,000 msg/s; the bench reports how close the daemon gets.
 */
import { defineWorker } from "../../src/mod.ts";

export default defineWorker<Uint8Array>({
  decode: "bytes",
  async handle() {
    await new Promise((resolve) => setTimeout(resolve, 5));
  },
});
