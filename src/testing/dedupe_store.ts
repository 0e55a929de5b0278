/**
 * The kit's dedupe store: a memory store as an entry of a config gets by
 * default.
 *
 * @module
 */

import { DEDUPE_FIELDS } from "../config/schema.ts";
import { MemoryStore } from "../dedupe/memory_store.ts";
import type { DedupeStore } from "../dedupe/store.ts";

/**
 * A memory dedupe store with the config's defaults (capacity and ttl), to
 * share between runs of {@linkcode import("./run_worker.ts").runWorker}.
 */
export function dedupeStore(): DedupeStore {
  return new MemoryStore({
    capacity: DEDUPE_FIELDS.capacity.fallback as number,
    ttlMs: DEDUPE_FIELDS.ttl.fallback as number,
  });
}
