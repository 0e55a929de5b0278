/**
 * The config of what protects handlers' downstreams: `breaker`,
 * `key_concurrency` and a shared `rate_limit`, with their defaults, their
 * inheritance from `defaults:` and their errors at file:line:col.
 */
import assert from "node:assert/strict";
import { ConfigError, formatIssue } from "../../src/config/config_error.ts";
import { draftConfig } from "../../src/config/load.ts";
import { prepare } from "../../src/daemon/prepare.ts";
import { validConfig } from "../helpers/valid_config.ts";

const FILE = "config.yaml";
const HEAD = ["nsq:", "  nsqd_tcp_addresses: [127.0.0.1:4150]"];
/** Lines 1 to 6; what follows belongs to the one entry (line 7 on). */
const ENTRY = [...HEAD, "workers:", "  - topic: t", "    channel: c", "    worker: w"];

function yaml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

function errors(text: string): string[] {
  const { config, issues } = draftConfig(text, FILE, {});
  assert.equal(config, null, "expected the config to be refused");
  return issues.map(formatIssue);
}

Deno.test("breaker: null by default, {} gives every default, an entry overrides defaults: whole", () => {
  assert.equal(validConfig(yaml(...ENTRY)).workers[0]!.breaker, null);
  assert.deepEqual(validConfig(yaml(...ENTRY, "    breaker: {}")).workers[0]!.breaker, {
    failureRate: 0.5,
    minRuns: 20,
    windowMs: 30_000,
    openForMs: 30_000,
  });
  const config = validConfig(yaml(
    ...HEAD,
    "defaults:",
    "  breaker: { failure_rate: 25%, min_runs: 5, window: 1m, open_for: 500ms }",
    "workers:",
    "  - { topic: a, channel: c, worker: w }",
    "  - { topic: b, channel: c, worker: w, breaker: null }",
    "  - { topic: d, channel: c, worker: w, breaker: { open_for: 2s } }",
  ));
  const expected = { failureRate: 0.25, minRuns: 5, windowMs: 60_000, openForMs: 500 };
  assert.deepEqual(config.defaults.breaker, expected);
  assert.deepEqual(config.workers.map((entry) => entry.breaker), [
    expected,
    null,
    { failureRate: 0.5, minRuns: 20, windowMs: 30_000, openForMs: 2_000 },
  ]);
});

Deno.test("breaker: each bad value at its file:line:col", () => {
  assert.deepEqual(
    errors(yaml(
      ...ENTRY,
      "    breaker:",
      "      failure_rate: 0%",
      "      min_runs: 0",
      "      window: 10ms",
      "      open_for: soon",
      "      opne_for: 1s",
    )),
    [
      `config.yaml:8:21: workers[0].breaker.failure_rate must be a percentage from 1% to 100%, ` +
      `like 50%, got "0%"`,
      "config.yaml:9:17: workers[0].breaker.min_runs must be an integer from 1 to 1000000, got 0",
      `config.yaml:10:15: workers[0].breaker.window must be a duration from 100ms to 1h, got "10ms"`,
      `config.yaml:11:17: workers[0].breaker.open_for must be a duration like 250ms, 5s, 15m or ` +
      `24h, got "soon"`,
      "config.yaml:12:7: workers[0].breaker.opne_for is not a known key (did you mean open_for?)",
    ],
  );
  assert.deepEqual(errors(yaml(...ENTRY, "    breaker: { failure_rate: 50 }")), [
    "config.yaml:7:30: workers[0].breaker.failure_rate must be a percentage from 1% to 100%, " +
    "like 50%, got 50",
  ]);
});

Deno.test("key_concurrency: null by default, 1 to 2500", () => {
  assert.equal(validConfig(yaml(...ENTRY)).workers[0]!.keyConcurrency, null);
  assert.equal(validConfig(yaml(...ENTRY, "    key_concurrency: 3")).workers[0]!.keyConcurrency, 3);
  for (const bad of ["0", "2501", "1.5", "one"]) {
    assert.deepEqual(errors(yaml(...ENTRY, `    key_concurrency: ${bad}`)), [
      `config.yaml:7:22: workers[0].key_concurrency must be an integer from 1 to 2500, got ${
        JSON.stringify(Number.isNaN(Number(bad)) ? bad : Number(bad))
      }`,
    ]);
  }
});

Deno.test("rate_limit: the plain rate, or { rate, shared }", () => {
  const rate = (text: string) =>
    validConfig(yaml(...ENTRY, `    rate_limit: ${text}`)).workers[0]!.rateLimit;
  assert.deepEqual(rate("200/s"), { count: 200, perMs: 1_000, shared: false });
  assert.deepEqual(rate("{ rate: 200/s, shared: true }"), {
    count: 200,
    perMs: 1_000,
    shared: true,
  });
  assert.deepEqual(rate("{ rate: 50/m }"), { count: 50, perMs: 60_000, shared: false });
  assert.deepEqual(errors(yaml(...ENTRY, "    rate_limit: { shared: yes }")), [
    "config.yaml:7:17: workers[0].rate_limit.rate is required",
    'config.yaml:7:27: workers[0].rate_limit.shared must be true or false, got "yes"',
  ]);
  assert.deepEqual(errors(yaml(...ENTRY, "    rate_limit: { rate: 0/s, shared: true }")), [
    'config.yaml:7:25: workers[0].rate_limit.rate must be a rate like 200/s, 50/m or 1000/h, got "0/s"',
  ]);
});

Deno.test("a shared rate_limit needs a redis store: refused where it is written", async () => {
  const refused = async (text: string) => {
    const error = await prepare(draftConfig(text, FILE, {}), {
      workers: () => Promise.resolve({ handle() {} }),
    }).then(() => null, (error: unknown) => error);
    assert.ok(error instanceof ConfigError, String(error));
    return error.message.split("\n");
  };
  assert.deepEqual(await refused(yaml(...ENTRY, "    rate_limit: { rate: 9/s, shared: true }")), [
    "config.yaml:7:38: workers[0].rate_limit.shared needs a redis dedupe store to keep the rate " +
    "in (dedupe.store: redis://HOST:PORT/DB), got memory",
  ]);
  assert.deepEqual(
    await refused(yaml(
      ...HEAD,
      "defaults:",
      "  rate_limit: { rate: 9/s, shared: true }",
      "dedupe: { store: memory }",
      "workers:",
      "  - { topic: a, channel: c, worker: w }",
      "  - { topic: b, channel: c, worker: w }",
    )),
    [
      "config.yaml:4:36: defaults.rate_limit.shared needs a redis dedupe store to keep the rate " +
      "in (dedupe.store: redis://HOST:PORT/DB), got memory",
    ],
    "once, at defaults, for every entry that inherits it",
  );
  const redis = validConfig(yaml(
    ...ENTRY,
    "    rate_limit: { rate: 9/s, shared: true }",
    "dedupe: { store: redis://127.0.0.1:6379/0 }",
  ));
  assert.equal(redis.workers[0]!.rateLimit?.shared, true);
});
