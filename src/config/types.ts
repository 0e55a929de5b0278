/**
 * The validated, frozen configuration the daemon runs from. Produced by
 * `loadConfig()`; every default is applied and every value is checked, so
 * code downstream never re-validates.
 *
 * @module
 */

/** A place in the config file, for errors that are found after parsing. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** A `host:port` pair. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One item of `nsq.nsqd_http_addresses`: an nsqd's TCP address and the base URL of its HTTP API. */
export interface NsqdHttpAddress {
  readonly tcp: HostPort;
  /** E.g. `http://127.0.0.1:4151`, without a trailing slash. */
  readonly http: string;
}

/** TLS settings for nsqd connections (`nsq.tls`) and for the redis store (`dedupe.tls`). */
export interface TlsConfig {
  readonly caFile: string | null;
  readonly certFile: string | null;
  readonly keyFile: string | null;
  readonly insecureSkipVerify: boolean;
}

/** Stream compression negotiated with nsqd. */
export type Compression = "none" | "deflate" | "snappy";

/** The `nsq:` section. */
export interface NsqConfig {
  /** Normalized base URLs, e.g. `http://127.0.0.1:4161` (no trailing slash). */
  readonly lookupdHttpAddresses: readonly string[];
  readonly nsqdTcpAddresses: readonly HostPort[];
  /** How often each nsqlookupd is asked for the nsqd of each topic. */
  readonly lookupdPollIntervalMs: number;
  /** Asked of nsqd in IDENTIFY; null leaves nsqd's default. */
  readonly outputBufferTimeoutMs: number | null;
  /** Where `ctx.publish` and dead letters go; null when not configured. */
  readonly publishNsqdTcpAddress: HostPort | null;
  /** The HTTP API of direct nsqd, each named by its TCP address; nsqlookupd tells of the others. */
  readonly nsqdHttpAddresses: readonly NsqdHttpAddress[];
  readonly topicPrefix: string;
  /** Never logged or printed. Null when empty or absent. */
  readonly authSecret: string | null;
  /** Null when `tls: false`. `tls: true` gives all-null files, verification on. */
  readonly tls: TlsConfig | null;
  readonly compression: Compression;
}

/** A rate such as `200/s`: at most `count` messages per `perMs` milliseconds. */
export interface RateLimit {
  readonly count: number;
  readonly perMs: number;
  /**
   * Kept by every process of the entry together, in one token bucket in the
   * redis dedupe store (`rate_limit: { rate: 200/s, shared: true }`).
   */
  readonly shared: boolean;
}

/**
 * An entry's circuit breaker (`breaker:`): failed handler runs over a
 * sliding window open it; open, the entry takes no messages.
 */
export interface BreakerConfig {
  /** The share of failed runs in the window that opens it, from 0.01 to 1. */
  readonly failureRate: number;
  /** The fewest runs in the window for it to open. */
  readonly minRuns: number;
  readonly windowMs: number;
  /** How long it stays open before one message goes through. */
  readonly openForMs: number;
}

/** The settings of `defaults:` that every entry may override. */
export interface EntrySettings {
  readonly maxInFlight: number;
  readonly maxAttempts: number;
  readonly requeueDelayMs: number;
  readonly maxRequeueDelayMs: number;
  readonly timeoutMs: number;
  /**
   * The configured template (e.g. `"{topic}.dead"`) or null. Entries carry the
   * resolved topic in `Entry.deadLetterTopic`.
   */
  readonly deadLetterTopic: string | null;
  readonly rateLimit: RateLimit | null;
  /** Null: no breaker. */
  readonly breaker: BreakerConfig | null;
  /** The top-level JSON field holding a W3C `traceparent`; null: none read or written. */
  readonly traceField: string | null;
  /** Child processes that run the worker; 0: the daemon's own thread. */
  readonly processes: number;
  /** With processes: how long a handler may run on after its timeout before its child is killed. */
  readonly killGraceMs: number;
  /** With processes: each child's V8 heap limit in MiB; null: V8's default. */
  readonly memoryLimitMib: number | null;
}

/** An entry's `batch:`: overrides of its worker's batch defaults. */
export interface BatchConfig {
  /** Items per batch, 1 to the entry's `max_in_flight`. */
  readonly size: number | null;
  /** How long a batch waits for more items after its first, in milliseconds. */
  readonly wait: number | null;
}

/** One item of `workers:`: a topic/channel pair and the worker that handles it. */
export interface Entry extends EntrySettings {
  /** The topic as written in the config (without `topic_prefix`). */
  readonly topic: string;
  /** The topic subscribed to on nsqd: `topic_prefix` + `topic`. */
  readonly nsqTopic: string;
  readonly channel: string;
  /** Worker name, e.g. `demo/pageview` for `workers/demo/pageview.ts`. */
  readonly worker: string;
  /** The entry's `options`, to be merged over the worker's own defaults. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * The dead letter topic with `{topic}` expanded (to the configured topic)
   * and `topic_prefix` applied; null when dead letters are disabled.
   */
  readonly deadLetterTopic: string | null;
  /** The entry's `batch:` for a worker with `handleBatch`; null keys keep the worker's defaults. */
  readonly batch: BatchConfig | null;
  /** At most this many handlers at once per key of the worker's `orderKey`; null: no limit. */
  readonly keyConcurrency: number | null;
  /** Where this entry's `worker:` value is written, for loader errors. */
  readonly workerLocation: SourceLocation;
}

/**
 * An entry's `worker:` as read, even from a config with other problems, so
 * that its module can be checked in the same pass.
 */
export interface WorkerReference {
  /** The entry's index in `workers:`. */
  readonly index: number;
  readonly name: string;
  /** Where `worker:` is written. */
  readonly location: SourceLocation;
  /** The entry's `options`; null when they could not be read. */
  readonly options: Readonly<Record<string, unknown>> | null;
}

/** Where processed dedupe keys are kept. */
export type DedupeStoreSpec =
  | { readonly kind: "memory" }
  | { readonly kind: "sqlite"; readonly path: string }
  | {
    readonly kind: "redis";
    readonly url: string;
  };

/**
 * What a message gets when the dedupe store fails to answer its claim:
 * `retry` requeues it (with backoff) until the store is back; `process` runs
 * the handler without dedupe, logged and counted.
 */
export type StoreErrorPolicy = "retry" | "process";

/** The `dedupe:` section. */
export interface DedupeConfig {
  readonly store: DedupeStoreSpec;
  readonly capacity: number;
  readonly ttlMs: number;
  readonly onStoreError: StoreErrorPolicy;
  /** TLS material of a `rediss://` or `rediss-cluster://` store; null otherwise. */
  readonly tls: TlsConfig | null;
}

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warning" | "error";

/** The `log:` section. */
export interface LogConfig {
  readonly level: LogLevel;
  readonly format: "json" | "pretty";
}

/** The `http:` section. */
export interface HttpConfig {
  /** Null disables the HTTP surface. */
  readonly listen: HostPort | null;
  /** Never logged or printed. Null when empty or absent. */
  readonly token: string | null;
}

/** The whole configuration. */
export interface Config {
  /** The path the config was read from, as given. */
  readonly file: string;
  readonly nsq: NsqConfig;
  readonly defaults: EntrySettings;
  readonly dedupe: DedupeConfig;
  readonly log: LogConfig;
  readonly http: HttpConfig;
  readonly shutdownTimeoutMs: number;
  /**
   * How long the daemon's thread may go without turning before the stall
   * watchdog kills the process.
   */
  readonly stallTimeoutMs: number;
  readonly workers: readonly Entry[];
}
