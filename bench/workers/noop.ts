/**
 * The throughput worker: takes the body as bytes and does nothing, so that
 * the bench measures the daemon's own cost per message.
 */
import { defineWorker } from "../../src/mod.ts";

export default defineWorker<Uint8Array>({
  decode: "bytes",
  handle() {},
});
