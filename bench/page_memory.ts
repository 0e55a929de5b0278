/**
 * The memory of the page's history and dead letter rings at 100 entries,
 * each full: the heap after a forced garbage collection, before and after.
 * Run with `--v8-flags=--expose-gc`; prints one line of JSON.
 *
 * @module
 */

import { EntryHistory, HISTORY_SAMPLES } from "../src/observe/entry_history.ts";
import {
  DEAD_LETTER_RING_SIZE,
  DeadLetterRing,
  MAX_ERROR_CHARS,
  PREVIEW_BYTES,
} from "../src/observe/dead_letter_ring.ts";

const ENTRIES = 100;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");

/** The heap taken by what `build` returns, in KiB. */
function measure(build: () => unknown): number {
  // Typed arrays keep their bytes outside the heap: "external" counts them.
  const used = () => {
    const { heapUsed, external } = Deno.memoryUsage();
    return heapUsed + external;
  };
  gc!();
  const before = used();
  const kept = build();
  gc!();
  const after = used();
  if (kept === null) throw new Error("unreachable");
  return Math.round((after - before) / 1024);
}

const histories = measure(() =>
  Array.from({ length: ENTRIES }, () => {
    const history = new EntryHistory();
    for (let i = 0; i < HISTORY_SAMPLES; i++) {
      history.push({ at: Date.now(), answered: i * 40, failed: i, p50Ms: 5, p99Ms: 250 });
    }
    return history;
  })
);

function rings(bodyBytes: number, errorChars: number): () => unknown {
  const body = new TextEncoder().encode("x".repeat(bodyBytes));
  return () =>
    Array.from({ length: ENTRIES }, (_, e) => {
      const ring = new DeadLetterRing();
      for (let i = 0; i < DEAD_LETTER_RING_SIZE; i++) {
        // A fresh string per dead letter, built by concatenation as each error is.
        const error = `Error: upstream ${e} answered 503 for ${i}: `.padEnd(errorChars, "e");
        ring.record(
          { id: `0a1b2c3d4e5f${i}`.slice(0, 16), attempts: 5, body },
          "max_attempts",
          error,
        );
      }
      return ring;
    });
}

console.log(JSON.stringify({
  entries: ENTRIES,
  history_samples: HISTORY_SAMPLES,
  ring_size: DEAD_LETTER_RING_SIZE,
  history_kib: histories,
  rings_typical_kib: measure(rings(100, 60)),
  rings_largest_kib: measure(rings(PREVIEW_BYTES * 4, MAX_ERROR_CHARS * 2)),
}));
