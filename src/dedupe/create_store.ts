/**
 * The dedupe store that `dedupe:` names.
 *
 * @module
 */

import type { DedupeConfig, TlsConfig } from "../config/types.ts";
import type { Logger } from "../worker/worker.ts";
import { MemoryStore } from "./memory_store.ts";
import type { DedupeStore } from "./store.ts";
import type { RedisTlsOptions } from "./redis_adapter.ts";

/**
 * Creates the store of `dedupe.store`, with its `ttl` and `on_store_error`
 * (`capacity` bounds the memory store only). A sqlite store is opened here,
 * so a file that cannot be opened throws; a redis store connects in the
 * background and recovers by itself whenever the server is reachable. The
 * files of `dedupe.tls` are read here (`check` has read them too). The
 * sqlite and redis modules are imported only when named: the redis client
 * alone adds about 12 MiB to the daemon's memory.
 *
 * @example
 * ```ts
 * import { createStore } from "./create_store.ts";
 *
 * const store = await createStore({
 *   store: { kind: "sqlite", path: "/var/lib/nsqworker/dedupe.db" },
 *   capacity: 100_000,
 *   ttlMs: 86_400_000,
 *   onStoreError: "retry",
 * });
 * await store.close();
 * ```
 */
export async function createStore(config: DedupeConfig, log?: Logger): Promise<DedupeStore> {
  const { store, capacity, ttlMs, onStoreError } = config;
  switch (store.kind) {
    case "memory":
      return new MemoryStore({ capacity, ttlMs });
    case "sqlite": {
      const { SqliteStore } = await import("./sqlite_store.ts");
      return new SqliteStore({
        path: store.path,
        ttlMs,
        onError: onStoreError,
        ...(log ? { log } : {}),
      });
    }
    case "redis": {
      const { RedisStore } = await import("./redis_store.ts");
      return new RedisStore({
        url: store.url,
        ...(config.tls === null ? {} : { tls: readTls(config.tls) }),
        ttlMs,
        onError: onStoreError,
        ...(log ? { log } : {}),
      });
    }
  }
}

/** The PEM files `dedupe.tls` names, read. */
function readTls(tls: TlsConfig): RedisTlsOptions {
  const read = (path: string | null) => path === null ? undefined : Deno.readTextFileSync(path);
  const [ca, cert, key] = [read(tls.caFile), read(tls.certFile), read(tls.keyFile)];
  return {
    insecureSkipVerify: tls.insecureSkipVerify,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}
