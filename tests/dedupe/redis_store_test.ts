/**
 * What the redis store adds to the store contract, against a real
 * redis-server: the key layout, lost scripts, outages and a hung server
 * (calls fail fast or time out, the store recovers by itself), and that the
 * password never shows.
 */

import assert from "node:assert/strict";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startRedis } from "../helpers/redis_server.ts";

const SCOPE = "pageviews/counter";

interface Line {
  readonly level: string;
  readonly message: string;
  readonly properties: Record<string, unknown>;
}

function recordingLogger(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, properties: Record<string, unknown> = {}) =>
    void lines.push({ level, message, properties });
  return {
    lines,
    log: { debug: at("debug"), info: at("info"), warning: at("warning"), error: at("error") },
  };
}

async function claimToken(store: RedisStore, key: string, leaseMs = 60_000): Promise<string> {
  const claim = await store.claim(SCOPE, key, leaseMs);
  assert.equal(claim.status, "claimed");
  return (claim as { token: string }).token;
}

/** Whether a claim gets an answer from redis now (and releases what it took). */
async function answers(store: RedisStore, key: string): Promise<boolean> {
  try {
    const claim = await store.claim(SCOPE, key, 60_000);
    if (claim.status === "claimed") await store.release(SCOPE, key, claim.token);
    return true;
  } catch {
    return false;
  }
}

Deno.test("redis store: keys are namespaced; a claim expires with its lease, a done mark with the ttl", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000 });
  try {
    const key = `nsqworker:dedupe:${SCOPE}:e1`;
    const token = await claimToken(store, "e1", 30_000);
    assert.equal(await redis.command("GET", key), `$${token.length}\r\n${token}\r\n`);
    const leaseLeft = Number((await redis.command("PTTL", key)).slice(1));
    assert.ok(leaseLeft > 29_000 && leaseLeft <= 30_000, `lease PTTL ${leaseLeft}`);
    await store.renew(SCOPE, "e1", token, 90_000);
    assert.ok(Number((await redis.command("PTTL", key)).slice(1)) > 89_000);

    await store.done(SCOPE, "e1", token);
    assert.equal(await redis.command("GET", key), "$1\r\nd\r\n");
    const ttlLeft = Number((await redis.command("PTTL", key)).slice(1));
    assert.ok(ttlLeft > 3_599_000 && ttlLeft <= 3_600_000, `done PTTL ${ttlLeft}`);
    assert.equal(await redis.command("DBSIZE"), ":1\r\n");
  } finally {
    await store.close();
  }
});

Deno.test("redis store: scripts flushed from redis are sent again", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000 });
  try {
    const token = await claimToken(store, "a");
    assert.equal(await redis.command("SCRIPT", "FLUSH"), "+OK\r\n");
    await store.renew(SCOPE, "a", token, 90_000);
    await store.release(SCOPE, "a", token);
    assert.equal(await redis.command("SCRIPT", "FLUSH"), "+OK\r\n");
    await claimToken(store, "a");
    assert.equal((await store.claim(SCOPE, "a", 60_000)).status, "busy");
  } finally {
    await store.close();
  }
});

/** How many times redis ran `command` (from INFO commandstats). */
async function calls(redis: { command(...args: string[]): Promise<string> }, command: string) {
  const stats = await redis.command("INFO", "commandstats");
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

Deno.test("redis store: the claims and done marks of one turn are one script call, each answered", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000 });
  try {
    await store.done(SCOPE, "old", await claimToken(store, "old"));
    const held = await claimToken(store, "held");
    // A first batch has redis cache the script; then once with it cached, once after it forgot it.
    await Promise.all([store.claim(SCOPE, "w1", 60_000), store.claim(SCOPE, "w2", 60_000)]);
    for (const round of [1, 2]) {
      assert.equal(await redis.command("CONFIG", "RESETSTAT"), "+OK\r\n");
      if (round === 2) assert.equal(await redis.command("SCRIPT", "FLUSH"), "+OK\r\n");
      const answers = await Promise.all([
        store.claim(SCOPE, `a${round}`, 60_000),
        store.claim(SCOPE, "old", 60_000),
        store.claim(SCOPE, "held", 60_000),
        store.done(SCOPE, `d${round}`, "no-claim"),
        store.claim(SCOPE, `d${round}`, 60_000),
        store.claim(SCOPE, `a${round}`, 60_000),
      ]);
      assert.deepEqual(answers.map((answer) => answer?.status), [
        "claimed",
        "done",
        "busy",
        undefined,
        "done",
        "busy",
      ]);
      assert.equal(await calls(redis, "evalsha"), 1, `round ${round}`);
      assert.equal(await calls(redis, "eval"), round === 1 ? 0 : 1, `round ${round}`);
    }
    await store.release(SCOPE, "held", held);
    assert.equal((await store.claim(SCOPE, "held", 60_000)).status, "claimed");
    // What a turn queued before close() is still sent and answered.
    const last = store.done(SCOPE, "last", "no-claim");
    await store.close();
    await last;
    assert.equal(await redis.command("GET", `nsqworker:dedupe:${SCOPE}:last`), "$1\r\nd\r\n");
  } finally {
    await store.close();
  }
});

Deno.test("redis store: while redis is down calls fail at once; it recovers when redis returns", async () => {
  await using redis = await startRedis();
  const { log, lines } = recordingLogger();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000, log, commandTimeoutMs: 5_000 });
  try {
    await store.done(SCOPE, "before", await claimToken(store, "before"));
    await redis.kill();
    await waitFor(() => !store.connected, { message: "the client to see the loss" });
    const started = performance.now();
    await assert.rejects(
      () => store.claim(SCOPE, "during", 60_000),
      (error: Error) => error.message.startsWith(`redis ${store.where} is unreachable: `),
    );
    // Far below the command timeout: nothing waits on a known outage.
    assert.ok(performance.now() - started < 1_000);
    await assert.rejects(() => store.done(SCOPE, "during", "x"));
    // A turn's batch fails as a whole, every call with the reason.
    const batch = await Promise.allSettled([
      store.claim(SCOPE, "during", 60_000),
      store.done(SCOPE, "during", "x"),
    ]);
    for (const result of batch) {
      assert.equal(result.status, "rejected");
      assert.match(String(result.reason), /is unreachable: /);
    }

    await redis.start();
    await waitFor(() => answers(store, "after"), { message: "the store to answer again" });
    // Not persisted: the restarted redis is empty, and the store works on.
    assert.equal((await store.claim(SCOPE, "before", 60_000)).status, "claimed");
    const warnings = lines.filter((line) => line.level === "warning");
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.message, "redis dedupe store unreachable; reconnecting");
    assert.ok(lines.some((line) => line.message === "redis dedupe store reconnected"));
  } finally {
    await store.close();
  }
});

Deno.test("redis store: a store started before redis is up connects once it is", async () => {
  await using redis = await startRedis();
  await redis.kill();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000, maxReconnectDelayMs: 200 });
  try {
    await waitFor(async () => !(await answers(store, "k")), { message: "a failed first call" });
    await redis.start();
    await waitFor(() => answers(store, "k"), { message: "the store to connect" });
  } finally {
    await store.close();
  }
});

Deno.test("redis store: calls to a hung redis time out; it answers again once resumed", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000, commandTimeoutMs: 200 });
  try {
    await claimToken(store, "warm");
    redis.pause();
    const started = performance.now();
    await assert.rejects(
      () => store.claim(SCOPE, "hung", 60_000),
      new Error(`redis ${store.where} did not answer within 200ms`),
    );
    const waited = performance.now() - started;
    assert.ok(waited >= 190 && waited < 1_000, `waited ${waited} ms`);
    redis.resume();
    await waitFor(() => answers(store, "resumed"), { message: "answers after the pause" });
  } finally {
    redis.resume();
    await store.close();
  }
});

Deno.test("redis store: the password never shows in errors or log lines", async () => {
  const password = "hunter2:s3cr@t/x";
  await using redis = await startRedis({ password });
  assert.ok(redis.url.includes(encodeURIComponent(password)));
  const { log, lines } = recordingLogger();
  const good = new RedisStore({ url: redis.url, ttlMs: 3_600_000, log });
  const wrongUrl = redis.url.replace(encodeURIComponent(password), encodeURIComponent("n0pe!"));
  const wrong = new RedisStore({ url: wrongUrl, ttlMs: 3_600_000, log });
  const errors: string[] = [];
  try {
    await claimToken(good, "k");
    await waitFor(async () => {
      try {
        await wrong.claim(SCOPE, "k", 60_000);
        return false;
      } catch (error) {
        errors.push(String(error));
        return /WRONGPASS/.test(String(error));
      }
    }, { message: "the wrong password to be refused" });
    await redis.kill();
    await waitFor(async () => !(await answers(good, "k2")), { message: "an outage error" });
    await assert.rejects(() => good.claim(SCOPE, "k3", 60_000), (error: Error) => {
      errors.push(String(error));
      return true;
    });
  } finally {
    await good.close();
    await wrong.close();
  }
  const text = JSON.stringify({ errors, lines });
  for (const secret of [password, encodeURIComponent(password), "n0pe!", "hunter2"]) {
    assert.ok(!text.includes(secret), `${secret} appears in ${text}`);
  }
  assert.ok(!good.where.includes("hunter2"));
});

Deno.test("redis store: close does not wait for an unreachable redis, and later calls reject", async () => {
  await using redis = await startRedis();
  const store = new RedisStore({ url: redis.url, ttlMs: 3_600_000, commandTimeoutMs: 300 });
  await claimToken(store, "k");
  await redis.kill();
  const started = performance.now();
  await store.close();
  assert.ok(performance.now() - started < 1_000);
  await assert.rejects(
    () => store.claim(SCOPE, "k", 60_000),
    new Error(`the redis dedupe store (${store.where}) is closed`),
  );
});
