// The yaml package reads LOG_TOKENS and LOG_STREAM while parsing: run with
// --allow-env (or --allow-env=LOG_TOKENS,LOG_STREAM) and --allow-read, as
// `deno task test` does.
import assert from "node:assert/strict";
import { ConfigError, formatIssue } from "../../src/config/config_error.ts";
import { formatDuration, parseDuration } from "../../src/config/duration.ts";
import { draftConfig, loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { validConfig } from "../helpers/valid_config.ts";

const FILE = "config.yaml";
const DOCUMENTED_EXAMPLE = new URL("../fixtures/config/documented_example.yaml", import.meta.url);

/** Lines of YAML; line numbers in the tests count from the first argument. */
function yaml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

const NSQ = ["nsq:", "  nsqd_tcp_addresses: [127.0.0.1:4150]"];
const WORKERS = ["workers:", "  - topic: t", "    channel: c", "    worker: w"];
/** A valid config of 6 lines; settings appended to it belong to the entry (line 7 on). */
const MINIMAL = [...NSQ, ...WORKERS];

function parse(text: string, env: Record<string, string> = {}, file = FILE): Config {
  return validConfig(text, file, env);
}

/** The formatted issues of a config that must be refused. */
function errors(text: string, env: Record<string, string> = {}): string[] {
  const { config, issues } = draftConfig(text, FILE, env);
  assert.equal(config, null, "expected the config to be refused");
  return issues.map(formatIssue);
}

function entry(config: Config, index = 0) {
  const e = config.workers[index];
  assert.ok(e, `no workers[${index}]`);
  return e;
}

Deno.test("the documented example gives every documented default, deeply frozen", async () => {
  const config = await loadConfig(DOCUMENTED_EXAMPLE.pathname, {});
  assert.deepEqual(config.nsq, {
    lookupdHttpAddresses: ["http://127.0.0.1:4161"],
    nsqdTcpAddresses: [],
    outputBufferTimeoutMs: null,
    lookupdPollIntervalMs: 15_000,
    publishNsqdTcpAddress: { host: "127.0.0.1", port: 4150 },
    nsqdHttpAddresses: [],
    topicPrefix: "",
    authSecret: null,
    tls: null,
    compression: "none",
  });
  assert.deepEqual(config.defaults, {
    maxInFlight: 50,
    maxAttempts: 5,
    requeueDelayMs: 5_000,
    maxRequeueDelayMs: 900_000,
    timeoutMs: 60_000,
    deadLetterTopic: "{topic}.dead",
    rateLimit: null,
    breaker: null,
    traceField: "traceparent",
    processes: 0,
    killGraceMs: 5_000,
    memoryLimitMib: null,
  });
  assert.deepEqual(config.dedupe, {
    store: { kind: "memory" },
    capacity: 100_000,
    ttlMs: 86_400_000,
    onStoreError: "retry",
    tls: null,
  });
  assert.deepEqual(config.log, { level: "info", format: "json" });
  assert.deepEqual(config.http, { listen: { host: "127.0.0.1", port: 4190 }, token: null });
  assert.equal(config.shutdownTimeoutMs, 30_000);
  assert.equal(config.stallTimeoutMs, 30_000);
  assert.equal(config.file, DOCUMENTED_EXAMPLE.pathname);
  assert.deepEqual(config.workers, [{
    topic: "pageviews",
    nsqTopic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
    options: { label: "demo" },
    batch: null,
    keyConcurrency: null,
    maxInFlight: 10,
    maxAttempts: 5,
    requeueDelayMs: 5_000,
    maxRequeueDelayMs: 900_000,
    timeoutMs: 60_000,
    deadLetterTopic: "pageviews.dead",
    rateLimit: null,
    breaker: null,
    traceField: "traceparent",
    processes: 0,
    killGraceMs: 5_000,
    memoryLimitMib: null,
    workerLocation: { file: DOCUMENTED_EXAMPLE.pathname, line: 37, col: 13 },
  }]);

  for (
    const part of [
      config,
      config.nsq,
      config.nsq.lookupdHttpAddresses,
      config.defaults,
      config.workers,
      entry(config),
      entry(config).options,
      entry(config).workerLocation,
      config.http.listen,
    ]
  ) {
    assert.ok(Object.isFrozen(part));
  }
  assert.throws(() => {
    (config.workers as Config["workers"][number][]).push(entry(config));
  }, TypeError);
});

Deno.test("entries inherit defaults and override each setting", () => {
  const config = parse(yaml(
    ...NSQ,
    "defaults:",
    "  max_in_flight: 20",
    "  max_attempts: 3",
    "  requeue_delay: 1s",
    "  max_requeue_delay: 1m",
    "  timeout: 2m",
    "  dead_letter_topic: dead.{topic}",
    "  rate_limit: 10/s",
    "workers:",
    "  - topic: a",
    "    channel: c",
    "    worker: w",
    "  - topic: b",
    "    channel: c",
    "    worker: team/b_worker",
    "    max_in_flight: 2500",
    "    max_attempts: 1000",
    "    requeue_delay: 0",
    "    max_requeue_delay: 1h",
    "    timeout: 1ms",
    "    dead_letter_topic: null",
    "    rate_limit: 3/h",
    "    options: {nested: {list: [1, two]}}",
  ));
  assert.deepEqual(config.defaults, {
    maxInFlight: 20,
    maxAttempts: 3,
    requeueDelayMs: 1_000,
    maxRequeueDelayMs: 60_000,
    timeoutMs: 120_000,
    deadLetterTopic: "dead.{topic}",
    rateLimit: { count: 10, perMs: 1_000, shared: false },
    breaker: null,
    traceField: "traceparent",
    processes: 0,
    killGraceMs: 5_000,
    memoryLimitMib: null,
  });
  const { workerLocation: _a, ...a } = entry(config, 0);
  assert.deepEqual(a, {
    ...config.defaults,
    topic: "a",
    nsqTopic: "a",
    channel: "c",
    worker: "w",
    options: {},
    batch: null,
    keyConcurrency: null,
    deadLetterTopic: "dead.a",
  });
  const { workerLocation, ...b } = entry(config, 1);
  assert.deepEqual(b, {
    topic: "b",
    nsqTopic: "b",
    channel: "c",
    worker: "team/b_worker",
    options: { nested: { list: [1, "two"] } },
    batch: null,
    keyConcurrency: null,
    maxInFlight: 2500,
    maxAttempts: 1000,
    requeueDelayMs: 0,
    maxRequeueDelayMs: 3_600_000,
    timeoutMs: 1,
    deadLetterTopic: null,
    rateLimit: { count: 3, perMs: 3_600_000, shared: false },
    breaker: null,
    traceField: "traceparent",
    processes: 0,
    killGraceMs: 5_000,
    memoryLimitMib: null,
  });
  assert.deepEqual(workerLocation, { file: FILE, line: 17, col: 13 });
  assert.ok(Object.isFrozen((b.options.nested as { list: unknown[] }).list));
});

Deno.test("ConfigError lists issues as file:line:col, or file: when unplaced", () => {
  const placed = { file: FILE, line: 14, col: 5, path: "x", message: "x is wrong" };
  const unplaced = { file: FILE, line: null, col: null, path: "", message: "y is wrong" };
  assert.equal(formatIssue(placed), "config.yaml:14:5: x is wrong");
  assert.equal(formatIssue(unplaced), "config.yaml: y is wrong");
  const error = new ConfigError([placed, unplaced]);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ConfigError");
  assert.equal(error.message, "config.yaml:14:5: x is wrong\nconfig.yaml: y is wrong");
  assert.deepEqual(error.issues, [placed, unplaced]);
});

Deno.test("an unreadable file is a ConfigError", async () => {
  const missing = new URL("../fixtures/config/no_such_file.yaml", import.meta.url).pathname;
  await assert.rejects(loadConfig(missing, {}), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, `${missing}: cannot read file: No such file or directory`);
    return true;
  });
});

Deno.test("YAML syntax errors are reported at their line and column", () => {
  assert.deepEqual(errors(yaml("nsq: [1", "workers: x")), [
    "config.yaml:2:1: invalid YAML: Flow sequence in block collection must be sufficiently " +
    "indented and end with a ]",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "x: 'open")), [
    "config.yaml:8:1: invalid YAML: Missing closing 'quote",
  ]);
});

Deno.test("a duplicate key is reported at its second occurrence", () => {
  assert.deepEqual(errors(yaml("nsq:", "  tls: false", "  tls: true", ...MINIMAL.slice(1))), [
    "config.yaml:3:3: nsq.tls is given twice (first at line 2)",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    options: {a: 1, a: 2}")), [
    "config.yaml:7:21: workers[0].options.a is given twice (first at line 7)",
  ]);
});

Deno.test("the document must be a mapping", () => {
  assert.deepEqual(errors(""), [
    "config.yaml: expected a mapping with a 'workers' list, got an empty document",
  ]);
  assert.deepEqual(errors(yaml("# all commented out")), [
    "config.yaml: expected a mapping with a 'workers' list, got an empty document",
  ]);
  assert.deepEqual(errors(yaml("- topic: t")), [
    "config.yaml:1:1: expected a mapping with a 'workers' list, got a list",
  ]);
  assert.deepEqual(errors(yaml("workers")), [
    `config.yaml:1:1: expected a mapping with a 'workers' list, got "workers"`,
  ]);
});

Deno.test("unknown keys are errors at the key, with a suggestion when close", () => {
  assert.deepEqual(
    errors(yaml("nsq:", "  lookupd_http_adresses: [a:4161]", ...MINIMAL.slice(1))),
    [
      "config.yaml:2:3: nsq.lookupd_http_adresses is not a known key " +
      "(did you mean lookupd_http_addresses?)",
    ],
  );
  assert.deepEqual(errors(yaml(...MINIMAL, "    maxInFlight: 3")), [
    "config.yaml:7:5: workers[0].maxInFlight is not a known key (did you mean max_in_flight?)",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "log:", "  colour: red")), [
    "config.yaml:8:3: log.colour is not a known key (known keys: level, format)",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "version: 2")), [
    "config.yaml:7:1: version is not a known key (known keys: nsq, defaults, dedupe, log, http, " +
    "shutdown_timeout, stall_timeout, workers)",
  ]);
});

Deno.test("integer settings say what they expected and what they got", () => {
  const cases: [string, string][] = [
    ["max_in_flight: ten", `workers[0].max_in_flight must be an integer from 1 to 2500, got "ten"`],
    ["max_in_flight: 0", "workers[0].max_in_flight must be an integer from 1 to 2500, got 0"],
    ["max_in_flight: 2501", "workers[0].max_in_flight must be an integer from 1 to 2500, got 2501"],
    ["max_in_flight: 1.5", "workers[0].max_in_flight must be an integer from 1 to 2500, got 1.5"],
    [
      "max_in_flight: [1]",
      "workers[0].max_in_flight must be an integer from 1 to 2500, got a list",
    ],
    [
      "max_in_flight: {a: 1}",
      "workers[0].max_in_flight must be an integer from 1 to 2500, got a mapping",
    ],
    ["max_in_flight: '10'", `workers[0].max_in_flight must be an integer from 1 to 2500, got "10"`],
    ["max_attempts: 0", "workers[0].max_attempts must be an integer from 1 to 1000, got 0"],
  ];
  for (const [line, message] of cases) {
    assert.deepEqual(errors(yaml(...MINIMAL, `    ${line}`)), [
      `config.yaml:7:${line.indexOf(":") + 7}: ${message}`,
    ]);
  }
  // An empty value is null, reported at its key.
  assert.deepEqual(errors(yaml(...MINIMAL, "    max_attempts:")), [
    "config.yaml:7:5: workers[0].max_attempts must be an integer from 1 to 1000, got null",
  ]);
});

Deno.test("durations: units, combinations, plain milliseconds, bounds", () => {
  const valid: [unknown, number][] = [
    ["250ms", 250],
    ["5s", 5_000],
    ["15m", 900_000],
    ["24h", 86_400_000],
    ["7d", 604_800_000],
    ["1h30m", 5_400_000],
    ["0s", 0],
    [0, 0],
    [1500, 1_500],
  ];
  for (const [text, ms] of valid) assert.equal(parseDuration(text), ms, String(text));
  for (const bad of ["5 seconds", "1.5s", "5S", "", "s", "5", "-1s", -1, 1.5, null, true]) {
    assert.equal(parseDuration(bad), null, JSON.stringify(bad));
  }
  assert.equal(formatDuration(5_400_000), "1h30m");
  assert.equal(formatDuration(86_400_000), "24h");
  assert.equal(formatDuration(250), "250ms");

  assert.equal(parse(yaml(...MINIMAL, "    timeout: 1500")).workers[0]?.timeoutMs, 1_500);
  assert.equal(parse(yaml(...MINIMAL, "dedupe: {ttl: 7d}")).dedupe.ttlMs, 604_800_000);
  assert.deepEqual(errors(yaml("defaults:", "  requeue_delay: 5 seconds", ...MINIMAL)), [
    `config.yaml:2:18: defaults.requeue_delay must be a duration like 250ms, 5s, 15m or 24h, ` +
    `got "5 seconds"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    timeout: 0s")), [
    `config.yaml:7:14: workers[0].timeout must be a duration from 1ms to 24h, got "0s"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe:", "  ttl: 31d")), [
    `config.yaml:8:8: dedupe.ttl must be a duration from 1s to 30d, got "31d"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "shutdown_timeout: 2h")), [
    `config.yaml:7:19: shutdown_timeout must be a duration from 0ms to 1h, got "2h"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "stall_timeout: 500ms")), [
    `config.yaml:7:16: stall_timeout must be a duration from 1s to 1h, got "500ms"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "stall_timeout: 2h")), [
    `config.yaml:7:16: stall_timeout must be a duration from 1s to 1h, got "2h"`,
  ]);
});

Deno.test("max_requeue_delay may not be below requeue_delay", () => {
  assert.deepEqual(
    errors(yaml("defaults:", "  requeue_delay: 20m", "  max_requeue_delay: 10m", ...MINIMAL)),
    [`config.yaml:3:22: defaults.max_requeue_delay must be at least requeue_delay (20m), got "10m"`],
  );
  // An entry raising requeue_delay over the inherited maximum.
  assert.deepEqual(errors(yaml(...MINIMAL, "    requeue_delay: 16m")), [
    `config.yaml:7:20: workers[0].requeue_delay must be at most max_requeue_delay (15m), ` +
    `got "16m"`,
  ]);
});

Deno.test("trace_field names a JSON field or is null; an empty one is refused", () => {
  const field = (text: string) =>
    parse(yaml(...MINIMAL, `    trace_field: ${text}`)).workers[0]?.traceField;
  assert.equal(field("tp"), "tp");
  assert.equal(field('"trace parent"'), "trace parent");
  assert.equal(field("null"), null);
  assert.deepEqual(errors(yaml(...MINIMAL, `    trace_field: ""`)), [
    `config.yaml:7:18: workers[0].trace_field must be a JSON field name (1 to 256 characters), ` +
    `or null, got ""`,
  ]);
});

Deno.test("processes is 0 to 64, kill_grace a duration, memory_limit a size in MiB or GiB", () => {
  const one = (...lines: string[]) => parse(yaml(...MINIMAL, ...lines)).workers[0]!;
  assert.deepEqual(
    [one().processes, one().killGraceMs, one().memoryLimitMib],
    [0, 5_000, null],
  );
  const child = one("    processes: 3", "    kill_grace: 250ms", "    memory_limit: 256MiB");
  assert.deepEqual([child.processes, child.killGraceMs, child.memoryLimitMib], [3, 250, 256]);
  assert.equal(one("    processes: 1", "    memory_limit: 2GiB").memoryLimitMib, 2048);
  // From defaults: inherited by every entry, and no complaint on an entry without children.
  const inherited = parse(
    yaml(
      ...NSQ,
      "defaults:",
      "  memory_limit: 1GiB",
      "  kill_grace: 1s",
      ...WORKERS.slice(0, 1),
      ...WORKERS.slice(1),
    ),
  ).workers[0]!;
  assert.deepEqual([inherited.memoryLimitMib, inherited.killGraceMs], [1024, 1000]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    processes: 65")), [
    `config.yaml:7:16: workers[0].processes must be an integer from 0 to 64, got 65`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    processes: 1", "    memory_limit: 256MB")), [
    `config.yaml:8:19: workers[0].memory_limit must be a size like 256MiB or 2GiB, from 32MiB ` +
    `to 64GiB, or null, got "256MB"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    processes: 1", "    memory_limit: 16MiB")), [
    `config.yaml:8:19: workers[0].memory_limit must be a size like 256MiB or 2GiB, from 32MiB ` +
    `to 64GiB, or null, got "16MiB"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    memory_limit: 256MiB")), [
    `config.yaml:7:19: workers[0].memory_limit applies only with processes of 1 or more, and ` +
    `this entry's processes is 0`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    kill_grace: 1s")), [
    `config.yaml:7:17: workers[0].kill_grace applies only with processes of 1 or more, and ` +
    `this entry's processes is 0`,
  ]);
});

Deno.test("rate_limit is N/s, N/m or N/h", () => {
  const rate = (text: string) =>
    parse(yaml(...MINIMAL, `    rate_limit: ${text}`)).workers[0]?.rateLimit;
  assert.deepEqual(rate("200/s"), { count: 200, perMs: 1_000, shared: false });
  assert.deepEqual(rate("50/m"), { count: 50, perMs: 60_000, shared: false });
  assert.deepEqual(rate("1000/h"), { count: 1000, perMs: 3_600_000, shared: false });
  assert.equal(rate("null"), null);
  for (const bad of ["fast", "0/s", "2/d", "1.5/s", "200"]) {
    assert.deepEqual(errors(yaml(...MINIMAL, `    rate_limit: ${bad}`)), [
      `config.yaml:7:17: workers[0].rate_limit must be a rate like 200/s, 50/m or 1000/h, ` +
      `got ${JSON.stringify(Number.isNaN(Number(bad)) ? bad : Number(bad))}`,
    ]);
  }
});

Deno.test("env: ${VAR} and ${VAR:-default} in strings, $$ for a literal $", () => {
  const config = parse(
    yaml(
      ...NSQ,
      "  auth_secret: ${SECRET}",
      "  topic_prefix: ${PREFIX:-}",
      "  tls: ${TLS:-false}",
      "http:",
      "  token: pa$$word-${EMPTY:-fallback}",
      ...WORKERS,
      "    max_in_flight: ${MIF:-10}",
      "    options:",
      '      quoted: "${MIF:-10}"',
      "      plain: ${MIF:-10}",
      "      literal: cost $$5 or $5",
      "      host: ${HOST}:4150",
      "      key_stays: x",
      "      flag: ${FLAG}",
    ),
    { SECRET: "s3cret", EMPTY: "", HOST: "nsqd", FLAG: "true" },
  );
  assert.equal(config.nsq.authSecret, "s3cret");
  assert.equal(config.nsq.topicPrefix, "", "an empty expansion stays an empty string");
  assert.equal(config.nsq.tls, null);
  assert.equal(config.http.token, "pa$word-fallback", ":- also applies to an empty variable");
  assert.equal(entry(config).maxInFlight, 10);
  assert.deepEqual(entry(config).options, {
    quoted: "10",
    plain: 10,
    literal: "cost $5 or $5",
    host: "nsqd:4150",
    key_stays: "x",
    flag: true,
  });
  // A typed re-read, then the usual check.
  assert.equal(
    parse(yaml(...NSQ, "  tls: ${TLS}", ...WORKERS), { TLS: "true" }).nsq.tls?.insecureSkipVerify,
    false,
  );
  assert.deepEqual(errors(yaml(...MINIMAL, "    max_in_flight: ${MIF}"), { MIF: "lots" }), [
    `config.yaml:7:20: workers[0].max_in_flight must be an integer from 1 to 2500, got "lots"`,
  ]);
  // A string option takes the variable's text even when it looks like a number.
  assert.equal(
    parse(yaml(...NSQ, "http:", "  token: ${T}", ...WORKERS), { T: "0123" }).http.token,
    "0123",
  );
});

Deno.test("env: an unset variable without default is an error at its scalar", () => {
  assert.deepEqual(
    errors(yaml(...MINIMAL, "http:", "  token: ${NSQWORKER_TOKEN}", "  listen: ${A}${B:-x}")),
    [
      "config.yaml:8:10: http.token: environment variable NSQWORKER_TOKEN is not set " +
      "(use ${NSQWORKER_TOKEN:-} for an optional value)",
      "config.yaml:9:11: http.listen: environment variable A is not set (use ${A:-} for an " +
      "optional value)",
    ],
  );
  assert.deepEqual(errors(yaml(...MINIMAL, "    options: {k: '${1X} ${Y'}")), [
    `config.yaml:7:18: workers[0].options.k: invalid environment reference "\${1X}": write ` +
    "${NAME} or ${NAME:-default}, and $$ for a literal $",
    `config.yaml:7:18: workers[0].options.k: invalid environment reference "\${Y": write ` +
    "${NAME} or ${NAME:-default}, and $$ for a literal $",
  ]);
});

Deno.test("secrets are never shown in messages", () => {
  assert.deepEqual(errors(yaml(...NSQ, "  auth_secret: [hunter2]", ...WORKERS)), [
    "config.yaml:3:16: nsq.auth_secret must be a string, got a list",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "http: {token: true}")), [
    "config.yaml:7:15: http.token must be a string, got a boolean",
  ]);
  const message = errors(yaml(...MINIMAL, "dedupe: {store: 'redis://u:hunter2@localhost:6379/16'}"))
    .join("\n");
  assert.ok(!message.includes("hunter2"), message);
  assert.equal(
    message,
    `config.yaml:7:17: dedupe.store must be a redis URL like redis://HOST:PORT/DB (DB is a ` +
      `number from 0 to 15), got "redis://u:***@localhost:6379/16"`,
  );
});

Deno.test("topic and channel names follow nsqd's rule, #ephemeral included", () => {
  const config = parse(yaml(
    ...NSQ,
    "workers:",
    "  - {topic: events#ephemeral, channel: tail#ephemeral, worker: w, dead_letter_topic: null}",
    "  - {topic: a.b_c-D9, channel: '2024', worker: w}",
    `  - {topic: ${"x".repeat(59)}, channel: c, worker: w}`,
  ));
  assert.equal(entry(config, 0).nsqTopic, "events#ephemeral");
  assert.equal(entry(config, 0).channel, "tail#ephemeral");
  assert.equal(entry(config, 1).channel, "2024");
  assert.equal(entry(config, 2).deadLetterTopic, `${"x".repeat(59)}.dead`);

  const rule = "1 to 64 characters of a-z A-Z 0-9 . _ -, optionally ending in #ephemeral";
  assert.deepEqual(
    errors(yaml(
      ...NSQ,
      "workers:",
      "  - topic: page views",
      "    channel: c#ephemeral.x",
      "    worker: w",
      `  - topic: ${"y".repeat(65)}`,
      "    channel: ''",
      "    worker: w",
    )),
    [
      `config.yaml:4:12: workers[0].topic must be an NSQ topic name (${rule}), got "page views"`,
      `config.yaml:5:14: workers[0].channel must be an NSQ channel name (${rule}), ` +
      `got "c#ephemeral.x"`,
      `config.yaml:7:12: workers[1].topic must be an NSQ topic name (${rule}), ` +
      `got "${"y".repeat(65)}"`,
      `config.yaml:8:14: workers[1].channel must be an NSQ channel name (${rule}), got ""`,
    ],
  );
});

Deno.test("topic_prefix applies to topics and dead letter topics, and counts in the length", () => {
  const config = parse(yaml(
    "nsq:",
    "  nsqd_tcp_addresses: [127.0.0.1:4150]",
    "  topic_prefix: staging.",
    ...WORKERS,
  ));
  assert.equal(entry(config).topic, "t");
  assert.equal(entry(config).nsqTopic, "staging.t");
  assert.equal(entry(config).deadLetterTopic, "staging.t.dead");

  const long = "a".repeat(60);
  assert.deepEqual(
    errors(yaml(
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150]",
      "  topic_prefix: staging.",
      "workers:",
      `  - topic: ${long}`,
      "    channel: c",
      "    worker: w",
    )),
    [
      `config.yaml:5:12: workers[0].topic with topic_prefix "staging." is "staging.${long}", ` +
      "68 characters: NSQ allows at most 64",
    ],
  );
  assert.deepEqual(errors(yaml(...NSQ, "  topic_prefix: 'st ag'", ...WORKERS)), [
    `config.yaml:3:17: nsq.topic_prefix must be made of characters a topic name may contain ` +
    `(a-z A-Z 0-9 . _ -), got "st ag"`,
  ]);
});

Deno.test("dead_letter_topic: only {topic}, and the result must be a valid topic", () => {
  const rule = "1 to 64 characters of a-z A-Z 0-9 . _ -, optionally ending in #ephemeral";
  assert.deepEqual(errors(yaml("defaults:", "  dead_letter_topic: '{name}.dead'", ...MINIMAL)), [
    `config.yaml:2:22: defaults.dead_letter_topic may only use the placeholder {topic}, ` +
    `got {name} in "{name}.dead"`,
  ]);
  assert.deepEqual(errors(yaml("defaults:", "  dead_letter_topic: dead letters", ...MINIMAL)), [
    `config.yaml:2:22: defaults.dead_letter_topic must be a topic name where {topic} stands for ` +
    `the entry's topic, like "{topic}.dead", or null, got "dead letters"`,
  ]);
  // A fixed template is checked once, with the prefix, where it is written.
  const fixed = "d".repeat(61);
  assert.deepEqual(
    errors(
      yaml(
        ...NSQ,
        "  topic_prefix: pre.",
        "defaults:",
        `  dead_letter_topic: ${fixed}`,
        ...WORKERS,
      ),
    ),
    [
      `config.yaml:5:22: defaults.dead_letter_topic gives the dead letter topic "pre.${fixed}", ` +
      `which is not a valid topic name (${rule})`,
    ],
  );
  // The entry's own template is blamed where it is written…
  assert.deepEqual(errors(yaml(...MINIMAL, `    dead_letter_topic: ${"x".repeat(65)}`)), [
    `config.yaml:7:24: workers[0].dead_letter_topic gives the dead letter topic ` +
    `"${"x".repeat(65)}", which is not a valid topic name (${rule})`,
  ]);
  // …and an inherited one at the entry's topic, which is what makes it too long.
  const topic = "t".repeat(60);
  assert.deepEqual(
    errors(yaml(...NSQ, "workers:", `  - topic: ${topic}`, "    channel: c", "    worker: w")),
    [
      `config.yaml:4:12: workers[0].topic gives the dead letter topic "${topic}.dead" ` +
      `(from defaults.dead_letter_topic), which is not a valid topic name (${rule}): ` +
      "set dead_letter_topic on this entry",
    ],
  );
  assert.deepEqual(
    errors(yaml(...NSQ, "workers:", "  - {topic: e#ephemeral, channel: c, worker: w}")).length,
    1,
    "an ephemeral topic needs its own dead_letter_topic",
  );
});

Deno.test("a topic/channel pair may appear only once", () => {
  assert.deepEqual(
    errors(yaml(
      ...MINIMAL,
      "  - topic: t",
      "    channel: other",
      "    worker: w",
      "  - topic: t",
      "    channel: c",
      "    worker: w2",
    )),
    [`config.yaml:10:5: workers[2] repeats topic "t" channel "c" of workers[0] (line 4)`],
  );
});

Deno.test("worker names a module under workers/", () => {
  const config = parse(
    yaml(...NSQ, "workers:", "  - {topic: t, channel: c, worker: demo/page-view_2}"),
  );
  assert.equal(entry(config).worker, "demo/page-view_2");
  assert.deepEqual(entry(config).workerLocation, { file: FILE, line: 4, col: 36 });

  const cases: [string, string][] = [
    [
      "demo/pageview.ts",
      "must name the module without its extension: write demo/pageview, not demo/pageview.ts",
    ],
    ["/etc/passwd", `must be a path under workers/, not an absolute path, got "/etc/passwd"`],
    ["demo/../../x", `must stay inside workers/ (no ..), got "demo/../../x"`],
    [
      "https://x.example/a.ts",
      `must name a module under workers/, not a URL, got "https://x.example/a.ts"`,
    ],
    ["demo\\\\pageview", `must use / between folders, got "demo\\\\pageview"`],
    [
      "demo/",
      `must name a module under workers/ like demo/pageview (lower-case letters, digits, _ and -, with / ` +
      `between folders), got "demo/"`,
    ],
  ];
  for (const [name, message] of cases) {
    assert.deepEqual(
      errors(yaml(...NSQ, "workers:", `  - {topic: t, channel: c, worker: "${name}"}`)),
      [`config.yaml:4:36: workers[0].worker ${message}`],
    );
  }
  assert.deepEqual(errors(yaml(...NSQ, "workers:", "  - {topic: t, channel: c, worker: [a]}")), [
    "config.yaml:4:36: workers[0].worker must be a module name under workers/ like demo/pageview, " +
    "got a list",
  ]);
});

Deno.test("nsq addresses are parsed and normalized", () => {
  const config = parse(yaml(
    "nsq:",
    "  lookupd_http_addresses: [127.0.0.1:4161, 'http://lookupd:4161/', 'https://LOOKUPD.example']",
    "  nsqd_tcp_addresses: ['[::1]:4150', nsqd-1:4150]",
    ...WORKERS,
  ));
  assert.deepEqual(config.nsq.lookupdHttpAddresses, [
    "http://127.0.0.1:4161",
    "http://lookupd:4161",
    "https://lookupd.example",
  ]);
  assert.deepEqual(config.nsq.nsqdTcpAddresses, [
    { host: "::1", port: 4150 },
    { host: "nsqd-1", port: 4150 },
  ]);
  assert.deepEqual(config.nsq.publishNsqdTcpAddress, { host: "::1", port: 4150 }, "the first nsqd");

  const lookupdOnly = parse(yaml("nsq: {lookupd_http_addresses: [l:4161]}", ...WORKERS));
  assert.equal(lookupdOnly.nsq.publishNsqdTcpAddress, null);
  const explicitNull = parse(yaml(...NSQ, "  publish_nsqd_tcp_address: null", ...WORKERS));
  assert.equal(explicitNull.nsq.publishNsqdTcpAddress, null);

  assert.deepEqual(
    errors(yaml(
      "nsq:",
      "  lookupd_http_addresses: ['ftp://l:1', 'http://l:4161/path', l]",
      "  nsqd_tcp_addresses: [n:0, n:65536, n]",
      "  publish_nsqd_tcp_address: 4150",
      ...WORKERS,
    )),
    [
      `config.yaml:2:28: nsq.lookupd_http_addresses[0] must be an nsqlookupd HTTP address like ` +
      `http://127.0.0.1:4161 or 127.0.0.1:4161, got "ftp://l:1"`,
      `config.yaml:2:41: nsq.lookupd_http_addresses[1] must be an nsqlookupd HTTP address like ` +
      `http://127.0.0.1:4161 or 127.0.0.1:4161, got "http://l:4161/path"`,
      `config.yaml:2:63: nsq.lookupd_http_addresses[2] must be an nsqlookupd HTTP address like ` +
      `http://127.0.0.1:4161 or 127.0.0.1:4161, got "l"`,
      `config.yaml:3:24: nsq.nsqd_tcp_addresses[0] must be a host:port address like ` +
      `127.0.0.1:4150 (port 1 to 65535), got "n:0"`,
      `config.yaml:3:29: nsq.nsqd_tcp_addresses[1] must be a host:port address like ` +
      `127.0.0.1:4150 (port 1 to 65535), got "n:65536"`,
      `config.yaml:3:38: nsq.nsqd_tcp_addresses[2] must be a host:port address like ` +
      `127.0.0.1:4150 (port 1 to 65535), got "n"`,
      `config.yaml:4:29: nsq.publish_nsqd_tcp_address must be a host:port address like ` +
      `127.0.0.1:4150 (port 1 to 65535), got 4150`,
    ],
  );
  assert.deepEqual(errors(yaml("nsq: {nsqd_tcp_addresses: 127.0.0.1:4150}", ...WORKERS)), [
    `config.yaml:1:27: nsq.nsqd_tcp_addresses must be a list of host:port addresses, ` +
    `got "127.0.0.1:4150"`,
  ]);
});

Deno.test("nsq needs a lookupd or an nsqd address", () => {
  assert.deepEqual(errors(yaml("nsq:", "  lookupd_http_addresses: []", ...WORKERS)), [
    "config.yaml:1:1: nsq.lookupd_http_addresses or nsq.nsqd_tcp_addresses must list at least " +
    "one address, got neither",
  ]);
  assert.deepEqual(errors(yaml(...WORKERS)), [
    "config.yaml: nsq.lookupd_http_addresses or nsq.nsqd_tcp_addresses must list at least " +
    "one address, got neither",
  ]);
});

Deno.test("nsq: tls, compression, auth_secret", () => {
  const tls = (value: string) => parse(yaml(...NSQ, `  tls: ${value}`, ...WORKERS)).nsq.tls;
  assert.equal(tls("false"), null);
  assert.deepEqual(tls("true"), {
    caFile: null,
    certFile: null,
    keyFile: null,
    insecureSkipVerify: false,
  });
  assert.deepEqual(
    parse(
      yaml(...NSQ, "  tls: {ca_file: ca.pem, cert_file: /abs/c.pem, key_file: k.pem}", ...WORKERS),
      {},
      "etc/nsqworker/config.yaml",
    ).nsq.tls,
    {
      caFile: "etc/nsqworker/ca.pem",
      certFile: "/abs/c.pem",
      keyFile: "etc/nsqworker/k.pem",
      insecureSkipVerify: false,
    },
  );
  assert.deepEqual(tls("{insecure_skip_verify: true}")?.insecureSkipVerify, true);
  assert.deepEqual(errors(yaml(...NSQ, "  tls: {cert_file: c.pem}", ...WORKERS)), [
    "config.yaml:3:20: nsq.tls.cert_file needs nsq.tls.key_file too",
  ]);
  assert.deepEqual(errors(yaml(...NSQ, "  tls: yes", ...WORKERS)), [
    "config.yaml:3:8: nsq.tls must be true, false or a mapping of ca_file, cert_file, key_file " +
    `and insecure_skip_verify, got "yes"`,
  ]);
  const config = parse(yaml(...NSQ, "  compression: snappy", "  auth_secret: ''", ...WORKERS));
  assert.equal(config.nsq.compression, "snappy");
  assert.equal(config.nsq.authSecret, null);
  assert.deepEqual(errors(yaml(...NSQ, "  compression: gzip", ...WORKERS)), [
    `config.yaml:3:16: nsq.compression must be one of none, deflate, snappy, got "gzip"`,
  ]);
});

Deno.test("nsq.nsqd_http_addresses: an nsqd's HTTP base URL by its TCP address", () => {
  const config = parse(
    yaml(
      "nsq:",
      "  nsqd_tcp_addresses: [127.0.0.1:4150, '[::1]:4150']",
      "  publish_nsqd_tcp_address: 10.0.0.5:4150",
      "  nsqd_http_addresses:",
      "    127.0.0.1:4150: 127.0.0.1:4251",
      "    '[::1]:4150': https://[::1]:4251/",
      "    10.0.0.5:4150: ${NSQD_HTTP}",
      ...WORKERS,
    ),
    { NSQD_HTTP: "nsqd.internal:80" },
  );
  assert.deepEqual(config.nsq.nsqdHttpAddresses, [
    { tcp: { host: "127.0.0.1", port: 4150 }, http: "http://127.0.0.1:4251" },
    { tcp: { host: "::1", port: 4150 }, http: "https://[::1]:4251" },
    { tcp: { host: "10.0.0.5", port: 4150 }, http: "http://nsqd.internal:80" },
  ]);
  assert.deepEqual(parse(yaml(...MINIMAL)).nsq.nsqdHttpAddresses, []);
  assert.deepEqual(errors(yaml(...NSQ, "  nsqd_http_addresses: [127.0.0.1:4151]", ...WORKERS)), [
    "config.yaml:3:24: nsq.nsqd_http_addresses must be a mapping from an nsqd's TCP address to " +
    "its HTTP address, like 127.0.0.1:4150: 127.0.0.1:4151, got a list",
  ]);
});

Deno.test("dedupe: store kinds, capacity and ttl", () => {
  const store = (value: string, file = FILE) =>
    parse(yaml(...MINIMAL, `dedupe: {store: "${value}"}`), {}, file).dedupe.store;
  assert.deepEqual(store("memory"), { kind: "memory" });
  assert.deepEqual(store("sqlite:data/dedupe.db", "etc/config.yaml"), {
    kind: "sqlite",
    path: "etc/data/dedupe.db",
  });
  assert.deepEqual(store("sqlite:/var/lib/d.db"), { kind: "sqlite", path: "/var/lib/d.db" });
  assert.deepEqual(store("redis://u:p@127.0.0.1:6379/2"), {
    kind: "redis",
    url: "redis://u:p@127.0.0.1:6379/2",
  });
  assert.deepEqual(store("redis://localhost:6379"), {
    kind: "redis",
    url: "redis://localhost:6379",
  });

  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {store: 'sqlite:'}")), [
    "config.yaml:7:17: dedupe.store needs a file path after sqlite:, like sqlite:data/dedupe.db",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {store: mem}")), [
    `config.yaml:7:17: dedupe.store must be memory, sqlite:PATH, redis://HOST:PORT/DB or redis-cluster://HOST:PORT[,HOST:PORT…], got "mem"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {capacity: 0}")), [
    "config.yaml:7:20: dedupe.capacity must be an integer from 1 to 10000000, got 0",
  ]);
  assert.equal(parse(yaml(...MINIMAL, "dedupe: {capacity: 10000000}")).dedupe.capacity, 10_000_000);
});

Deno.test("dedupe: redis-cluster:// and rediss-cluster:// name the seed nodes", () => {
  const store = (value: string) =>
    parse(yaml(...MINIMAL, `dedupe: {store: "${value}"}`)).dedupe.store;
  assert.deepEqual(store("redis-cluster://10.0.0.1:7000,10.0.0.2:7000"), {
    kind: "redis",
    url: "redis-cluster://10.0.0.1:7000,10.0.0.2:7000",
  });
  assert.deepEqual(store("rediss-cluster://u:p@cache:7000/"), {
    kind: "redis",
    url: "rediss-cluster://u:p@cache:7000/",
  });
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {store: 'redis-cluster://a:7000,b'}")), [
    `config.yaml:7:17: dedupe.store must be a cluster URL like redis-cluster://HOST:PORT,HOST:PORT ("b" is not a HOST:PORT with a port of 1 to 65535), got "redis-cluster://a:7000,b"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {store: 'redis-cluster://u:secret@a:1/2'}")), [
    `config.yaml:7:17: dedupe.store must be a cluster URL like redis-cluster://HOST:PORT,HOST:PORT (HOST:PORT pairs separated by commas; no database, query or fragment), got "redis-cluster://u:***@a:1/2"`,
  ]);
});

Deno.test("dedupe.tls: the shape of nsq.tls, only with a rediss:// store", () => {
  const dedupe = (lines: string) =>
    parse(yaml(...MINIMAL, "dedupe:", ...lines.split("\n").map((l) => `  ${l}`))).dedupe;
  assert.equal(dedupe("store: rediss://cache:6380").tls, null);
  assert.deepEqual(dedupe("store: rediss://cache:6380\ntls: true").tls, {
    caFile: null,
    certFile: null,
    keyFile: null,
    insecureSkipVerify: false,
  });
  assert.deepEqual(
    dedupe("store: rediss-cluster://a:7000\ntls: {ca_file: /etc/ca.pem}").tls?.caFile,
    "/etc/ca.pem",
  );
  assert.deepEqual(
    errors(yaml(...MINIMAL, "dedupe:", "  store: redis://cache:6379", "  tls: true")),
    [
      "config.yaml:9:8: dedupe.tls is set but dedupe.store is not a rediss:// or rediss-cluster:// URL: use rediss:// (TLS) or remove dedupe.tls",
    ],
  );
  assert.deepEqual(
    errors(yaml(...MINIMAL, "dedupe:", "  store: rediss://c:1", "  tls: {cert_file: c.pem}")),
    ["config.yaml:9:20: dedupe.tls.cert_file needs dedupe.tls.key_file too"],
  );
});

Deno.test("dedupe.on_store_error: retry (default) or process", () => {
  const policy = (line: string) => parse(yaml(...MINIMAL, line)).dedupe.onStoreError;
  assert.equal(policy("dedupe: {}"), "retry");
  assert.equal(policy("dedupe: {on_store_error: retry}"), "retry");
  assert.equal(policy("dedupe: {on_store_error: process}"), "process");
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {on_store_error: ignore}")), [
    `config.yaml:7:26: dedupe.on_store_error must be one of retry, process, got "ignore"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "dedupe: {on_store_eror: process}")), [
    "config.yaml:7:10: dedupe.on_store_eror is not a known key (did you mean on_store_error?)",
  ]);
});

Deno.test("log: level and format", () => {
  assert.deepEqual(parse(yaml(...MINIMAL, "log: {level: debug, format: pretty}")).log, {
    level: "debug",
    format: "pretty",
  });
  assert.deepEqual(errors(yaml(...MINIMAL, "log: {level: warn, format: text}")), [
    `config.yaml:7:14: log.level must be one of debug, info, warning, error, got "warn"`,
    `config.yaml:7:28: log.format must be one of json, pretty, got "text"`,
  ]);
});

Deno.test("http: listen on loopback, or set a token", () => {
  const http = (text: string, env: Record<string, string> = {}) =>
    parse(yaml(...MINIMAL, "http:", ...text.split("\n").map((l) => `  ${l}`)), env).http;
  assert.deepEqual(http("listen: null"), { listen: null, token: null });
  assert.deepEqual(http("listen: '[::1]:4190'").listen, { host: "::1", port: 4190 });
  assert.deepEqual(http("listen: localhost:0").listen, { host: "localhost", port: 0 });
  assert.deepEqual(http("listen: 127.1.2.3:80").listen, { host: "127.1.2.3", port: 80 });
  assert.deepEqual(http("listen: 0.0.0.0:4190\ntoken: ${T}", { T: "s3cret" }), {
    listen: { host: "0.0.0.0", port: 4190 },
    token: "s3cret",
  });
  assert.deepEqual(errors(yaml(...MINIMAL, "http:", "  listen: 0.0.0.0:4190", "  token: ''")), [
    "config.yaml:8:11: http.listen is 0.0.0.0:4190, which is not loopback: set http.token " +
    "(e.g. token: ${NSQWORKER_TOKEN}) or listen on 127.0.0.1",
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "http: {listen: '[::]:4190'}")), [
    "config.yaml:7:16: http.listen is [::]:4190, which is not loopback: set http.token " +
    "(e.g. token: ${NSQWORKER_TOKEN}) or listen on 127.0.0.1",
  ]);
});

Deno.test("workers: a non-empty list of complete entries", () => {
  assert.deepEqual(errors(yaml(...NSQ)), ["config.yaml:1:1: workers is required"]);
  assert.deepEqual(errors(yaml(...NSQ, "workers: []")), [
    "config.yaml:3:10: workers must be a list of at least one entry (topic, channel, worker), " +
    "got an empty list",
  ]);
  assert.deepEqual(errors(yaml(...NSQ, "workers:", "  topic: t")), [
    "config.yaml:4:3: workers must be a list of at least one entry (topic, channel, worker), " +
    "got a mapping",
  ]);
  assert.deepEqual(errors(yaml(...NSQ, "workers:", "  - topic: t", "  - demo/pageview")), [
    "config.yaml:4:5: workers[0].channel is required",
    "config.yaml:4:5: workers[0].worker is required",
    `config.yaml:5:5: workers[1] must be a mapping, got "demo/pageview"`,
  ]);
  assert.deepEqual(errors(yaml(...MINIMAL, "    options: [a]")), [
    "config.yaml:7:14: workers[0].options must be a mapping, got a list",
  ]);
});

Deno.test("every issue of a file is reported, in document order", () => {
  const text = yaml(
    "nsq:",
    "  nsqd_tcp_addresses: [127.0.0.1:4150]",
    "  compresion: none",
    "defaults:",
    "  max_in_flight: ten",
    "http:",
    "  token: ${TOKEN}",
    "workers:",
    "  - topic: t",
    "    channel: c",
    "    worker: w.ts",
    "    timeout: forever",
    "  - topic: t",
    "    channel: c",
    "    worker: w",
    "shutdown_timeout: -1",
  );
  assert.deepEqual(errors(text), [
    "config.yaml:3:3: nsq.compresion is not a known key (did you mean compression?)",
    `config.yaml:5:18: defaults.max_in_flight must be an integer from 1 to 2500, got "ten"`,
    "config.yaml:7:10: http.token: environment variable TOKEN is not set (use ${TOKEN:-} for an " +
    "optional value)",
    "config.yaml:11:13: workers[0].worker must name the module without its extension: write w, " +
    "not w.ts",
    `config.yaml:12:14: workers[0].timeout must be a duration like 250ms, 5s, 15m or 24h, ` +
    `got "forever"`,
    `config.yaml:13:5: workers[1] repeats topic "t" channel "c" of workers[0] (line 9)`,
    "config.yaml:16:19: shutdown_timeout must be a duration like 250ms, 5s, 15m or 24h, got -1",
  ]);
  assert.deepEqual(draftConfig(text, FILE, {}).issues[0], {
    file: FILE,
    line: 3,
    col: 3,
    path: "nsq.compresion",
    message: "nsq.compresion is not a known key (did you mean compression?)",
  });
});

Deno.test("empty sections take their defaults; anchors and aliases work", () => {
  const config = parse(yaml(
    ...NSQ,
    "defaults:",
    "dedupe:",
    "log: {}",
    "workers:",
    "  - &base {topic: a, channel: c, worker: w, options: &opts {k: v}}",
    "  - {topic: b, channel: c, worker: w, options: *opts}",
  ));
  assert.equal(config.defaults.maxInFlight, 50);
  assert.equal(config.dedupe.capacity, 100_000);
  assert.deepEqual(entry(config, 1).options, { k: "v" });
  assert.deepEqual(errors(yaml(...MINIMAL, "    options: *nope")), [
    "config.yaml:7:14: workers[0].options refers to an unknown anchor *nope",
  ]);
});

Deno.test("nested aliases cannot make a small file expensive to read", () => {
  const lines = [...NSQ, "bomb:", "  - &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"];
  for (let i = 1; i < 12; i++) {
    lines.push(`  - &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
  }
  lines.push(...MINIMAL.slice(2), "    options: {big: *a11}");
  const found = errors(yaml(...lines)).filter((line) => line.includes("aliases"));
  assert.equal(found.length, 1);
  assert.match(found[0] ?? "", /expands aliases too many times \(more than 10000\)$/);
});
