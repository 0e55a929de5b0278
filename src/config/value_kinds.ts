/**
 * Kinds specific to nsqworker's config: NSQ names, worker names, addresses,
 * rates, the dead letter template, file paths and the dedupe store.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { formatHostPort, normalizeLookupdAddress, parseHostPort } from "./address.ts";
import { boolean, describedAs, ENV_REFERENCE, type Kind, textWith, writtenAs } from "./kinds.ts";
import {
  hasNameCharsOnly,
  isNsqName,
  MAX_NAME_LENGTH,
  NSQ_NAME,
  NSQ_NAME_RULE,
  WORKER_NAME,
  workerNameProblem,
} from "./names.ts";
import { type At, INVALID, type Invalid } from "./reader.ts";
import { complete, field, REQUIRED, section } from "./section.ts";
import type { DedupeStoreSpec, HostPort, NsqdHttpAddress, RateLimit } from "./types.ts";
import { redact } from "../redact.ts";
import { isRedisClusterUrl, parseRedisClusterUrl } from "./redis_cluster_url.ts";

/** An NSQ topic or channel name, as written (before `topic_prefix`). */
export function nsqName(what: "topic" | "channel"): Kind<string> {
  return textWith(
    `an NSQ ${what} name (${NSQ_NAME_RULE})`,
    { type: "string", pattern: NSQ_NAME.source, maxLength: MAX_NAME_LENGTH },
    (name) => isNsqName(name) ? name : undefined,
  );
}

/** `topic_prefix`: characters a topic may contain, possibly none. */
export const topicPrefix: Kind<string> = textWith(
  "made of characters a topic name may contain (a-z A-Z 0-9 . _ -)",
  { type: "string", pattern: "^[.a-zA-Z0-9_-]*$", maxLength: MAX_NAME_LENGTH - 1 },
  (prefix) => hasNameCharsOnly(prefix) ? prefix : undefined,
);

/** A `worker:` value: a module under `workers/`, without extension. */
export const workerName: Kind<string> = textWith(
  "a module name under workers/ like demo/pageview",
  { type: "string", pattern: WORKER_NAME.source },
  (name, at) => {
    const problem = workerNameProblem(name);
    return problem === null ? name : at.fail(problem);
  },
);

/** `host:port`; `allowPortZero` for listen addresses (the system picks a port). */
export function hostPort(allowPortZero = false): Kind<HostPort> {
  return writtenAs(
    textWith(
      `a host:port address like 127.0.0.1:4150 (port ${allowPortZero ? 0 : 1} to 65535)`,
      { type: "string", pattern: hostPortPattern(allowPortZero) },
      (value) => parseHostPort(value, allowPortZero) ?? undefined,
    ),
    formatHostPort,
  );
}

/** `host:port` as a JSON Schema pattern: a name or address (IPv6 in brackets), and a port. */
function hostPortPattern(allowPortZero: boolean): string {
  const port = `6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|` +
    `[1-9][0-9]{0,3}${allowPortZero ? "|0" : ""}`;
  return `^(\\[[0-9a-fA-F:.]+\\]|[^:/\\s\\[\\]]+):(${port})$`;
}

/** The HTTP address of an nsqlookupd or nsqd, normalized to a base URL. */
function httpAddress(of: "nsqlookupd" | "nsqd", examplePort: number): Kind<string> {
  return textWith(
    `an ${of} HTTP address like http://127.0.0.1:${examplePort} or 127.0.0.1:${examplePort}`,
    { type: "string", pattern: "^(https?://)?[^/\\s]+/?$" },
    (value) => normalizeLookupdAddress(value) ?? undefined,
  );
}

/** An nsqlookupd HTTP address, normalized to a base URL. */
export const lookupdAddress: Kind<string> = httpAddress("nsqlookupd", 4161);

const nsqdHttpAddress: Kind<string> = httpAddress("nsqd", 4151);

const NSQD_HTTP_EXPECTED =
  "a mapping from an nsqd's TCP address to its HTTP address, like 127.0.0.1:4150: 127.0.0.1:4151";

/**
 * `nsq.nsqd_http_addresses`: the HTTP address of an nsqd, keyed by its TCP
 * address. Nothing pairs nsqd's two ports, so they are written down.
 */
export const nsqdHttpAddresses: Kind<NsqdHttpAddress[]> = describedAs(
  (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    if (found.shape === "scalar" && found.value === null) return [];
    if (found.shape !== "mapping") return at.mustBe(NSQD_HTTP_EXPECTED, found);
    const pairs: NsqdHttpAddress[] = [];
    let ok = true;
    for (const { key, at: value } of found.entries) {
      const tcp = parseHostPort(key);
      if (tcp === null) {
        value.reader.report(
          value.keyOffset ?? value.offset,
          value.path,
          `${at.path} must be keyed by nsqd TCP addresses like 127.0.0.1:4150, got ${
            JSON.stringify(key)
          }`,
        );
        ok = false;
        continue;
      }
      const http = nsqdHttpAddress(value);
      if (http === INVALID) ok = false;
      else pairs.push({ tcp, http });
    }
    return ok ? pairs : INVALID;
  },
  (of) => ({
    description: NSQD_HTTP_EXPECTED,
    type: ["object", "null"],
    propertyNames: { pattern: hostPortPattern(false) },
    additionalProperties: of(nsqdHttpAddress),
  }),
  (pairs) => Object.fromEntries(pairs.map(({ tcp, http }) => [formatHostPort(tcp), http])),
);

const RATE = /^([1-9]\d*)\/(s|m|h)$/;
const PER_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000 };

/** A rate such as `200/s`, `50/m` or `1000/h`, kept by each process on its own. */
const rateText: Kind<RateLimit> = textWith(
  "a rate like 200/s, 50/m or 1000/h",
  { type: "string", pattern: RATE.source },
  (value) => {
    const [, count, unit] = RATE.exec(value) ?? [];
    const perMs = PER_MS[unit ?? ""];
    if (count === undefined || perMs === undefined) return undefined;
    const n = Number(count);
    return Number.isSafeInteger(n) ? { count: n, perMs, shared: false } : undefined;
  },
);

function formatRate({ count, perMs }: RateLimit): string {
  const unit = Object.entries(PER_MS).find(([, ms]) => ms === perMs)?.[0] ?? "s";
  return `${count}/${unit}`;
}

const RATE_FIELDS = {
  rate: field("rate", rateText, REQUIRED, "a rate like 200/s, 50/m or 1000/h"),
  shared: field(
    "shared",
    boolean,
    false,
    "one token bucket in the redis dedupe store for every process of the entry",
  ),
} as const;

const rateSection = section(RATE_FIELDS, (s): RateLimit | Invalid => {
  const values = complete(s.values);
  return values === INVALID ? INVALID : { ...values.rate, shared: values.shared };
});

/**
 * `rate_limit`: a rate such as `200/s`, `50/m` or `1000/h`, or a mapping
 * `{ rate: 200/s, shared: true }` for a rate every process keeps together.
 */
export const rateLimit: Kind<RateLimit> = describedAs(
  (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    return found.shape === "mapping" ? rateSection(at) : rateText(at);
  },
  (of) => ({ anyOf: [of(rateText), of(rateSection)] }),
  (rate) => rate.shared ? { rate: formatRate(rate), shared: true } : formatRate(rate),
);

const PERCENT = /^(\d+(?:\.\d+)?)%$/;

/** A share written as a percentage, `50%`, from `min`% to `max`%; read as a fraction (0.5). */
export function percent(min: number, max: number): Kind<number> {
  return writtenAs(
    textWith(
      `a percentage from ${min}% to ${max}%, like 50%`,
      { type: "string", pattern: PERCENT.source },
      (value) => {
        const [, digits] = PERCENT.exec(value) ?? [];
        const n = Number(digits);
        return digits !== undefined && n >= min && n <= max ? n / 100 : undefined;
      },
    ),
    (fraction) => `${Math.round(fraction * 10_000) / 100}%`,
  );
}

const PLACEHOLDER = /\{[^{}]*\}/g;
const STATIC_PART = /^[.a-zA-Z0-9_-]*(#ephemeral)?$/;

/**
 * `dead_letter_topic`: a topic name where `{topic}` stands for the entry's
 * topic. Whether the result is a valid topic is checked per entry, where the
 * topic and prefix are known.
 */
export const deadLetterTemplate: Kind<string> = textWith(
  `a topic name where {topic} stands for the entry's topic, like "{topic}.dead", or null`,
  { type: "string", pattern: "^([.a-zA-Z0-9_-]|\\{topic\\})+(#ephemeral)?$" },
  (template, at) => {
    const unknown = (template.match(PLACEHOLDER) ?? []).find((p) => p !== "{topic}");
    if (unknown !== undefined) {
      return at.fail(
        `may only use the placeholder {topic}, got ${unknown} in ${JSON.stringify(template)}`,
      );
    }
    const rest = template.replaceAll("{topic}", "");
    return template !== "" && STATIC_PART.test(rest) ? template : undefined;
  },
);

/**
 * `trace_field`: the top-level JSON field holding a W3C `traceparent`. Any
 * non-empty key of at most 256 characters: it names a field of someone else's
 * JSON, not something of ours.
 */
export const traceFieldName: Kind<string> = textWith(
  "a JSON field name (1 to 256 characters), or null",
  { type: "string", minLength: 1, maxLength: 256 },
  (name) => name.length >= 1 && name.length <= 256 ? name : undefined,
);

/** A file path; relative paths are taken from the config file's directory. */
export const filePath: Kind<string> = textWith(
  "a file path",
  { type: "string", minLength: 1 },
  (path, at) => path === "" ? undefined : resolveFrom(at.reader.file, path),
);

function resolveFrom(configFile: string, path: string): string {
  return isAbsolute(path) ? path : join(dirname(configFile), path);
}

const STORE_EXPECTED =
  "memory, sqlite:PATH, redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT…]";

/**
 * `dedupe.store`: `memory`, `sqlite:PATH`, `redis://[user:pass@]host:port[/db]`
 * (`rediss://` for TLS) or `redis-cluster://[user:pass@]host:port[,host:port…]`
 * (`rediss-cluster://` for TLS).
 */
export const dedupeStore: Kind<DedupeStoreSpec> = describedAs(
  (at) => {
    const found = at.found();
    if (found === INVALID) return INVALID;
    const value = found.shape === "scalar" ? found.value : undefined;
    if (typeof value !== "string") return at.mustBe(STORE_EXPECTED, found);
    if (value === "memory") return { kind: "memory" };
    if (value.startsWith("sqlite:")) {
      const path = value.slice("sqlite:".length);
      if (path === "") {
        return at.fail(`needs a file path after sqlite:, like sqlite:data/dedupe.db`);
      }
      return { kind: "sqlite", path: resolveFrom(at.reader.file, path) };
    }
    if (/^rediss?:\/\//.test(value)) return redisStore(at, value);
    if (isRedisClusterUrl(value)) {
      const parsed = parseRedisClusterUrl(value);
      if (typeof parsed === "string") {
        return at.fail(
          `must be a cluster URL like redis-cluster://HOST:PORT,HOST:PORT ${parsed}, got ${
            JSON.stringify(redact(value))
          }`,
        );
      }
      return { kind: "redis", url: value };
    }
    return at.fail(`must be ${STORE_EXPECTED}, got ${JSON.stringify(redact(value))}`);
  },
  {
    anyOf: [{
      description: STORE_EXPECTED,
      type: "string",
      pattern:
        "^(memory|sqlite:.+|rediss?://[^/?#]+(/([0-9]|1[0-5])?)?|rediss?-cluster://[^/?#]+/?)$",
    }, ENV_REFERENCE],
  },
  (spec) =>
    spec.kind === "memory" ? "memory" : spec.kind === "sqlite" ? `sqlite:${spec.path}` : spec.url,
);

function redisStore(at: At, value: string): DedupeStoreSpec | Invalid {
  const refuse = (why: string): Invalid =>
    at.fail(
      `must be a redis URL like redis://HOST:PORT/DB ${why}, got ${JSON.stringify(redact(value))}`,
    );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refuse("(not a valid URL)");
  }
  if (url.hostname === "") return refuse("(no host)");
  if (url.port === "0") return refuse("(port 1 to 65535)");
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !(/^\d{1,2}$/.test(db) && Number(db) <= 15)) {
    return refuse("(DB is a number from 0 to 15)");
  }
  if (url.search !== "" || url.hash !== "") return refuse("(no query or fragment)");
  return { kind: "redis", url: value };
}

const SIZE = /^([1-9]\d{0,6})(MiB|GiB)$/;
/** The bounds of `memory_limit`, in MiB: below 32 MiB a Deno process cannot start. */
export const MEMORY_LIMIT_MIB = { min: 32, max: 65_536 } as const;

/**
 * `memory_limit`: a heap size in MiB or GiB (`256MiB`, `2GiB`), from 32MiB
 * to 64GiB, given to a child's V8 as `--max-old-space-size` (in MiB). Units
 * are binary and required: `256MB` would leave it open whether 10^6 or 2^20
 * was meant.
 */
export const memorySize: Kind<number> = writtenAs(
  textWith(
    `a size like 256MiB or 2GiB, from ${MEMORY_LIMIT_MIB.min}MiB to 64GiB, or null`,
    { type: "string", pattern: SIZE.source },
    (value) => {
      const [, count, unit] = SIZE.exec(value) ?? [];
      if (count === undefined) return undefined;
      const mib = Number(count) * (unit === "GiB" ? 1024 : 1);
      return mib >= MEMORY_LIMIT_MIB.min && mib <= MEMORY_LIMIT_MIB.max ? mib : undefined;
    },
  ),
  formatMemorySize,
);

/** A size in MiB as `memory_limit` writes it: whole GiB as GiB, else MiB. */
export function formatMemorySize(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}GiB` : `${mib}MiB`;
}
