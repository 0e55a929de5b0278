/**
 * The CPU-bound worker: each message keeps the CPU busy for 20 µs, as a
 * handler that parses or computes would, so that the handler rather than
 * the daemon or nsqd sets the pace and more processes can use more cores.
 */
import { defineWorker } from "../../src/mod.ts";

const SPIN_MS = 0.02;

export default defineWorker<Uint8Array>({
  decode: "bytes",
  handle() {
    const until = performance.now() + SPIN_MS;
    while (performance.now() < until) {
      // Busy on purpose: this is the work being measured.
    }
  },
});
