/**
 * Every key of config.yaml, declared once with its kind and default, and the
 * checks that relate one key to another.
 *
 * @module
 */

import { formatHostPort, isLoopbackHost, parseHostPort } from "./address.ts";
import { formatDuration } from "./duration.ts";
import {
  boolean,
  describedAs,
  duration,
  ENV_REFERENCE,
  integer,
  type Kind,
  list,
  mapping,
  nullable,
  oneOf,
  optionalText,
} from "./kinds.ts";
import { SETTING_BOUNDS } from "./setting_bounds.ts";
import { type At, describe, INVALID, type Invalid } from "./reader.ts";
import { AS_EMPTY, complete, field, REQUIRED, type Section, section } from "./section.ts";
import type {
  BatchConfig,
  BreakerConfig,
  DedupeConfig,
  DedupeStoreSpec,
  HostPort,
  HttpConfig,
  LogConfig,
  NsqConfig,
  TlsConfig,
} from "./types.ts";
import {
  deadLetterTemplate,
  dedupeStore,
  filePath,
  hostPort,
  lookupdAddress,
  memorySize,
  nsqdHttpAddresses,
  nsqName,
  percent,
  rateLimit,
  topicPrefix,
  traceFieldName,
  workerName,
} from "./value_kinds.ts";

const BREAKER_FIELDS = {
  failure_rate: field(
    "failureRate",
    percent(1, 100),
    0.5,
    "the share of failed handler runs (throws and timeouts) in the window that opens it",
  ),
  min_runs: field(
    "minRuns",
    integer(1, 1_000_000),
    20,
    "the fewest handler runs in the window for it to open",
  ),
  window: field(
    "windowMs",
    duration("100ms", "1h"),
    30_000,
    "how far back handler runs count",
  ),
  open_for: field(
    "openForMs",
    duration("100ms", "1h"),
    30_000,
    "how long it stays open (no messages taken) before one message goes through",
  ),
} as const;

const breaker: Kind<BreakerConfig> = section(BREAKER_FIELDS, (s) => complete(s.values));

/** The settings of `defaults:`, which every entry of `workers:` may override. */
export const SETTING_FIELDS = {
  max_in_flight: field(
    "maxInFlight",
    integer(1, 2500),
    50,
    "messages handled at once by the entry, over all its nsqd",
  ),
  max_attempts: field(
    "maxAttempts",
    integer(SETTING_BOUNDS.maxAttempts.min, SETTING_BOUNDS.maxAttempts.max),
    5,
    "deliveries before a failing message is dead-lettered",
  ),
  requeue_delay: field(
    "requeueDelayMs",
    duration(SETTING_BOUNDS.requeueDelayMs.min, SETTING_BOUNDS.requeueDelayMs.max),
    5_000,
    "delay of the first retry; it doubles each attempt, with ±25 % jitter",
  ),
  max_requeue_delay: field(
    "maxRequeueDelayMs",
    duration(SETTING_BOUNDS.maxRequeueDelayMs.min, SETTING_BOUNDS.maxRequeueDelayMs.max),
    900_000,
    "cap of the retry delay; at most 1h (nsqd's --max-req-timeout)",
  ),
  timeout: field(
    "timeoutMs",
    duration(SETTING_BOUNDS.timeoutMs.min, SETTING_BOUNDS.timeoutMs.max),
    60_000,
    "handler deadline: ctx.signal aborts and the message is retried",
  ),
  dead_letter_topic: field(
    "deadLetterTopic",
    nullable(deadLetterTemplate),
    "{topic}.dead",
    "where dead messages go; {topic} is the entry's topic; null: log and count only",
  ),
  rate_limit: field(
    "rateLimit",
    nullable(rateLimit),
    null,
    "at most this many messages per second, minute or hour (200/s, 50/m, 1000/h), enforced through RDY; { rate: 200/s, shared: true }: one limit for every process, kept in the redis dedupe store; null: no limit",
  ),
  breaker: field(
    "breaker",
    nullable(breaker),
    null,
    "a circuit breaker: failed handler runs over window open it, and the entry takes no messages for open_for, then one; null: none",
  ),
  trace_field: field(
    "traceField",
    nullable(traceFieldName),
    "traceparent",
    "top-level field of JSON bodies holding a W3C traceparent, read and written when tracing is on (OTEL_DENO=true); null: none",
  ),
  processes: field(
    "processes",
    integer(0, 64),
    0,
    "child processes that run the worker's decode, validation, handler, setup and teardown; 0: the daemon's own thread",
  ),
  kill_grace: field(
    "killGraceMs",
    duration("0ms", "1h"),
    5_000,
    "with processes: how long a handler may run on after its timeout aborted ctx.signal before its child is killed and replaced",
  ),
  memory_limit: field(
    "memoryLimitMib",
    nullable(memorySize),
    null,
    "with processes: the heap limit of each child, like 256MiB or 2GiB; a child past it is replaced; null: V8's default",
  ),
} as const;

const BATCH_FIELDS = {
  size: field(
    "size",
    nullable(integer(1, 2500)),
    null,
    "items per batch, at most the entry's max_in_flight (default: the worker's, else max_in_flight)",
  ),
  wait: field(
    "wait",
    nullable(duration("0ms", "1h")),
    null,
    "how long a batch waits for more items after its first (default: the worker's, else 1s)",
  ),
} as const;

const batch: Kind<BatchConfig> = section(BATCH_FIELDS, (s) => complete(s.values));

/** The keys of one item of `workers:`. */
export const ENTRY_FIELDS = {
  topic: field("topic", nsqName("topic"), REQUIRED, "the NSQ topic (topic_prefix is prepended)"),
  channel: field("channel", nsqName("channel"), REQUIRED, "the NSQ channel"),
  worker: field(
    "worker",
    workerName,
    REQUIRED,
    "the module under workers/, without .ts: demo/pageview is workers/demo/pageview.ts",
  ),
  options: field("options", mapping, {}, "handed to the worker, merged over its own defaults"),
  batch: field(
    "batch",
    nullable(batch),
    null,
    "for a worker with handleBatch: size and wait of its batches, over the worker's own",
  ),
  key_concurrency: field(
    "keyConcurrency",
    nullable(integer(1, 2500)),
    null,
    "at most this many handlers at once per key of the worker's orderKey (across processes with a redis store); null: no limit",
  ),
  ...SETTING_FIELDS,
} as const;

/**
 * Checks what relates one setting to another, reporting at a key of this
 * mapping; inherited values were checked where they were written.
 */
export function checkSettings(s: Section<typeof SETTING_FIELDS>): void {
  const { requeueDelayMs: first, maxRequeueDelayMs: max } = s.values;
  if (first === INVALID || max === INVALID || first <= max) return;
  const maxAt = s.present.get("max_requeue_delay");
  const firstAt = s.present.get("requeue_delay");
  if (maxAt !== undefined) {
    maxAt.fail(`must be at least requeue_delay (${formatDuration(first)}), got ${shownAt(maxAt)}`);
  } else if (firstAt !== undefined) {
    firstAt.fail(
      `must be at most max_requeue_delay (${formatDuration(max)}), got ${shownAt(firstAt)}`,
    );
  }
}

function shownAt(at: At): string {
  const found = at.found();
  return found === INVALID ? "an invalid value" : describe(found, at.secret);
}

/**
 * `defaults:` as read, with INVALID for the settings that could not be read,
 * so that entries inherit every setting that could.
 */
const defaults: Kind<Section<typeof SETTING_FIELDS>> = section(SETTING_FIELDS, (s) => {
  checkSettings(s);
  return s;
});

const TLS_FIELDS = {
  ca_file: field(
    "caFile",
    nullable(filePath),
    null,
    "CA certificates that sign nsqd's certificate (default: the system's)",
  ),
  cert_file: field("certFile", nullable(filePath), null, "client certificate, with key_file"),
  key_file: field("keyFile", nullable(filePath), null, "client key, with cert_file"),
  insecure_skip_verify: field(
    "insecureSkipVerify",
    boolean,
    false,
    "accept any nsqd certificate (testing only)",
  ),
} as const;

const tlsFiles = section(TLS_FIELDS, (s): TlsConfig | Invalid => {
  const { certFile, keyFile } = s.values;
  // A client certificate is useless without its key, and the reverse.
  if (certFile !== INVALID && keyFile !== INVALID && (certFile === null) !== (keyFile === null)) {
    const [given, missing] = certFile === null
      ? ["key_file", "cert_file"]
      : ["cert_file", "key_file"];
    return (s.present.get(given) ?? s.at).fail(`needs ${s.at.path}.${missing} too`);
  }
  return complete(s.values);
});

/** `nsq.tls`: false (or empty), true, or a mapping of files. */
const tls: Kind<TlsConfig | null> = describedAs(
  (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape === "mapping") return tlsFiles(at);
    if (found.shape === "scalar" && (found.value === false || found.value === null)) return null;
    if (found.shape === "scalar" && found.value === true) {
      return { caFile: null, certFile: null, keyFile: null, insecureSkipVerify: false };
    }
    return at.mustBe(
      "true, false or a mapping of ca_file, cert_file, key_file and insecure_skip_verify",
      found,
    );
  },
  (of) => ({ anyOf: [{ type: ["boolean", "null"] }, of(tlsFiles), ENV_REFERENCE] }),
  (value) => value === null ? false : value,
);

const NSQ_FIELDS = {
  lookupd_http_addresses: field(
    "lookupdHttpAddresses",
    list(lookupdAddress, "a list of nsqlookupd HTTP addresses"),
    [],
    "nsqlookupd HTTP addresses (and/or nsqd_tcp_addresses)",
  ),
  nsqd_tcp_addresses: field(
    "nsqdTcpAddresses",
    list(hostPort(), "a list of host:port addresses"),
    [],
    "nsqd TCP addresses connected to directly (and/or lookupd_http_addresses)",
  ),
  // How soon a new nsqd for a topic is found; go-nsq's default is 60s.
  lookupd_poll_interval: field(
    "lookupdPollIntervalMs",
    duration("1s", "1h"),
    15_000,
    "how often nsqlookupd is asked for new nsqd",
  ),
  // How long nsqd may hold messages for us before sending; null keeps nsqd's
  // own default (250ms), which sets most of the latency at moderate rates.
  output_buffer_timeout: field(
    "outputBufferTimeoutMs",
    // nsqd refuses less than its --min-output-buffer-timeout, 25ms by default.
    nullable(duration("25ms", "30s")),
    null,
    "how long nsqd may hold messages before sending, from nsqd's --min-output-buffer-timeout (25ms by default); null: nsqd's 250ms",
  ),
  publish_nsqd_tcp_address: field(
    "publishNsqdTcpAddress",
    nullable(hostPort()),
    null,
    "where ctx.publish and dead letters go (default: the first nsqd_tcp_addresses)",
  ),
  nsqd_http_addresses: field(
    "nsqdHttpAddresses",
    nsqdHttpAddresses,
    [],
    "the HTTP address of an nsqd of nsqd_tcp_addresses or publish_nsqd_tcp_address, keyed by its TCP address, where no nsqlookupd lists it: for replay's counts and deno task dev",
  ),
  topic_prefix: field(
    "topicPrefix",
    topicPrefix,
    "",
    "prepended to every topic subscribed to or published to",
  ),
  auth_secret: field("authSecret", optionalText, null, "sent to nsqd in AUTH; never logged", {
    secret: true,
  }),
  tls: field(
    "tls",
    tls,
    null,
    "TLS to nsqd: true, or a mapping of ca_file, cert_file, key_file, insecure_skip_verify",
  ),
  compression: field(
    "compression",
    oneOf("none", "deflate", "snappy"),
    "none",
    "compression of nsqd connections (snappy needs --allow-ffi)",
  ),
} as const;

const nsq = section(NSQ_FIELDS, (s): NsqConfig | Invalid => {
  const values = complete(s.values);
  const { lookupdHttpAddresses: lookupd, nsqdTcpAddresses: nsqd } = s.values;
  if (lookupd !== INVALID && nsqd !== INVALID && lookupd.length === 0 && nsqd.length === 0) {
    const path = s.at.path;
    s.at.reader.report(
      s.at.keyOffset ?? s.at.offset,
      path,
      `${path}.lookupd_http_addresses or ${path}.nsqd_tcp_addresses must list at least one ` +
        `address, got neither`,
    );
    return INVALID;
  }
  // Without an explicit publish address, publish to the first nsqd consumed from.
  const publish = s.present.has("publish_nsqd_tcp_address")
    ? s.values.publishNsqdTcpAddress
    : nsqd === INVALID
    ? INVALID
    : nsqd[0] ?? null;
  if (nsqd === INVALID || publish === INVALID || !httpAddressesNameKnownNsqd(s, nsqd, publish)) {
    return INVALID;
  }
  if (values === INVALID) return INVALID;
  return { ...values, publishNsqdTcpAddress: publish };
});

/**
 * Whether every key of `nsq.nsqd_http_addresses` is an nsqd of
 * `nsqd_tcp_addresses` or the `publish` one; one that is not is most likely
 * a typo, reported at its key.
 */
function httpAddressesNameKnownNsqd(
  s: Section<typeof NSQ_FIELDS>,
  nsqd: readonly HostPort[],
  publish: HostPort | null,
): boolean {
  const at = s.present.get("nsqd_http_addresses");
  const found = at?.found();
  if (at === undefined || found === undefined || found === INVALID || found.shape !== "mapping") {
    return true;
  }
  const known = [...new Set([...nsqd, ...(publish === null ? [] : [publish])].map(formatHostPort))];
  let ok = true;
  for (const { key, at: value } of found.entries) {
    const tcp = parseHostPort(key);
    if (tcp === null || known.includes(formatHostPort(tcp))) continue;
    value.reader.report(
      value.keyOffset ?? value.offset,
      value.path,
      `${at.path} names ${JSON.stringify(key)}, which is neither in nsq.nsqd_tcp_addresses ` +
        `nor nsq.publish_nsqd_tcp_address (${
          known.length === 0 ? "both empty" : known.join(", ")
        })`,
    );
    ok = false;
  }
  return ok;
}

export const DEDUPE_FIELDS = {
  store: field(
    "store",
    dedupeStore,
    { kind: "memory" },
    "memory, sqlite:PATH, redis://[user:pass@]HOST:PORT/DB (rediss:// for TLS) or " +
      "redis-cluster://[user:pass@]HOST:PORT[,HOST:PORT…] (rediss-cluster:// for TLS)",
  ),
  capacity: field("capacity", integer(1, 10_000_000), 100_000, "keys the memory store keeps (LRU)"),
  ttl: field("ttlMs", duration("1s", "30d"), 86_400_000, "how long a handled key is remembered"),
  // retry: REQ and wait for the store; process: run the handler without dedupe.
  on_store_error: field(
    "onStoreError",
    oneOf("retry", "process"),
    "retry",
    "when the store fails: retry (requeue until it answers) or process (handle without dedupe)",
  ),
  tls: field(
    "tls",
    tls,
    null,
    "TLS material for a rediss:// or rediss-cluster:// store: true, or a mapping of ca_file, " +
      "cert_file, key_file, insecure_skip_verify",
  ),
} as const;

const dedupe = section(DEDUPE_FIELDS, (s): DedupeConfig | Invalid => {
  const { store, tls } = s.values;
  // TLS settings on a plaintext store would suggest an encryption that does not happen.
  if (tls !== INVALID && tls !== null && store !== INVALID && !storeUsesTls(store)) {
    return (s.present.get("tls") ?? s.at).fail(
      `is set but ${s.at.path}.store is not a rediss:// or rediss-cluster:// URL: ` +
        `use rediss:// (TLS) or remove ${s.at.path}.tls`,
    );
  }
  return complete(s.values);
});

function storeUsesTls(store: DedupeStoreSpec): boolean {
  return store.kind === "redis" && /^rediss(-cluster)?:\/\//.test(store.url);
}

const LOG_FIELDS = {
  level: field(
    "level",
    oneOf("debug", "info", "warning", "error"),
    "info",
    "the lowest level logged",
  ),
  format: field(
    "format",
    oneOf("json", "pretty"),
    "json",
    "json (one object a line on stdout) or pretty",
  ),
} as const;

const log: Kind<LogConfig> = section(LOG_FIELDS, (s) => complete(s.values));

const HTTP_FIELDS = {
  listen: field(
    "listen",
    nullable(hostPort(true)),
    { host: "127.0.0.1", port: 4190 },
    "host:port of the HTTP listener (port 0: any free port); null disables it",
  ),
  token: field(
    "token",
    optionalText,
    null,
    "bearer token for pause and resume; required when listen is not loopback",
    { secret: true },
  ),
} as const;

const http = section(HTTP_FIELDS, (s): HttpConfig | Invalid => {
  const { listen, token } = s.values;
  const listenAt = s.present.get("listen");
  // Anyone who can reach a non-loopback listener could pause consumers.
  if (listen && listen !== INVALID && token === null && !isLoopbackHost(listen.host)) {
    const path = listenAt?.path ?? `${s.at.path}.listen`;
    return (listenAt ?? s.at).report(
      `${path} is ${formatHostPort(listen)}, which is not loopback: set ${s.at.path}.token ` +
        `(e.g. token: \${NSQWORKER_TOKEN}) or listen on 127.0.0.1`,
    );
  }
  return complete(s.values);
});

const entryList: Kind<readonly At[]> = describedAs((at) => {
  const found = at.found();
  if (found === INVALID) return INVALID;
  if (found.shape === "list" && found.items.length > 0) return found.items;
  return at.mustBe("a list of at least one entry (topic, channel, worker)", found);
}, (of) => ({ type: "array", minItems: 1, items: of(entryKeys) }));

/**
 * The keys of one entry as a kind, for the schema only: entries are read in
 * `entries.ts`, against `defaults:`.
 */
const entryKeys = section(ENTRY_FIELDS, (s) => complete(s.values));

/**
 * The top-level keys. `workers` items are kept as found: they are read
 * against `defaults` and `nsq.topic_prefix` once those are known.
 */
export const CONFIG_FIELDS = {
  nsq: field("nsq", nsq, AS_EMPTY, "how to reach NSQ"),
  defaults: field(
    "defaults",
    defaults,
    AS_EMPTY,
    "settings of every entry, each overridable per entry",
  ),
  dedupe: field("dedupe", dedupe, AS_EMPTY, "the store of handled dedupe keys"),
  log: field("log", log, AS_EMPTY, "logging"),
  http: field(
    "http",
    http,
    AS_EMPTY,
    "the HTTP listener: /ping, /ready, /stats, /metrics, pause and resume",
  ),
  shutdown_timeout: field(
    "shutdownTimeoutMs",
    duration("0ms", "1h"),
    30_000,
    "how long in-flight handlers may finish after SIGTERM",
  ),
  stall_timeout: field(
    "stallTimeoutMs",
    duration("1s", "1h"),
    30_000,
    "how long the daemon's thread may go without turning (a handler stuck in a synchronous loop) " +
      "before a watchdog logs the handlers that were running and kills the process (SIGKILL), " +
      "for its service manager to restart it",
  ),
  workers: field("workers", entryList, REQUIRED, "the entries: one consumer per topic and channel"),
} as const;
