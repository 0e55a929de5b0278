/**
 * The page's routes and actions through the handler called directly, with
 * fake figures: who may read and act, what every answer carries, what
 * reaches the page's dependencies, and that a message's markup is escaped
 * in the page the daemon renders.
 */

import assert from "node:assert/strict";
import { createHandler, type HandlerDeps } from "../../src/daemon/http/handler.ts";
import type { PageDeps } from "../../src/daemon/http/page_deps.ts";
import type { EntrySnapshot } from "../../src/daemon/http/snapshot.ts";
import type { ReplayFilter } from "../../src/daemon/replay_dead_letters.ts";
import { EntryHistory } from "../../src/observe/entry_history.ts";
import { DeadLetterRing } from "../../src/observe/dead_letter_ring.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";

const TOKEN = "s3cret-token";
const XSS = "<img src=x onerror=alert(1)>";

interface Calls {
  replays: ReplayFilter[];
  channelPauses: [string, string, boolean][];
  warnings: Record<string, unknown>[];
}

function pageHandler(
  options: {
    token?: string | null;
    replay?: PageDeps["replay"];
    failNsqd?: boolean;
    entry?: Partial<EntrySnapshot>;
  } = {},
) {
  const calls: Calls = { replays: [], channelPauses: [], warnings: [] };
  const entry = fakeEntry(options.entry, [{ kind: "finish", durationMs: 3 }]);
  const ring = new DeadLetterRing();
  ring.record({ id: "0a", attempts: 5, body: new TextEncoder().encode(XSS) }, "max_attempts", XSS);
  const history = new EntryHistory();
  history.push({ at: 1, answered: 7, failed: 2, p50Ms: 5, p99Ms: 10 });
  const closing = new AbortController();
  const log: Logger = {
    debug() {},
    info() {},
    warning: (_message, fields) => calls.warnings.push(fields ?? {}),
    error() {},
  };
  const page: PageDeps = {
    sampleMs: 5000,
    historyTaken: () => 1,
    history: () => history,
    deadLetters: (topic, channel) =>
      topic === entry.topic && channel === entry.channel
        ? { topic: "env.pageviews.dead", written: ring.written, records: () => ring.records() }
        : null,
    topicDepth: (topic) => Promise.resolve({ topic, depth: 4, channels: [], problems: [] }),
    pauseChannel(topic, channel, paused) {
      calls.channelPauses.push([topic, channel, paused]);
      if (topic !== entry.topic) return Promise.resolve(null);
      return Promise.resolve([
        options.failNsqd
          ? { nsqd: "127.0.0.1:4150", result: "failed", error: "refused" }
          : { nsqd: "127.0.0.1:4150", result: "done" },
      ]);
    },
    replay: options.replay ?? ((filter) => {
      calls.replays.push(filter);
      return Promise.resolve({
        replayed: 1,
        skipped: 2,
        left: 2,
        failed: 0,
        truncated: 0,
        foreign: 0,
        errors: [],
      });
    }),
    closing: closing.signal,
  };
  const deps: HandlerDeps = {
    readiness: () => ({ ready: true, reasons: [] }),
    snapshot: () => fakeSnapshot([entry]),
    pause: () => entry,
    resume: () => entry,
    token: options.token === undefined ? TOKEN : options.token,
    log,
    page,
  };
  return { handler: createHandler(deps), calls, closing };
}

const url = (path: string) => `http://127.0.0.1:4190${path}`;
const bearer = { Authorization: `Bearer ${TOKEN}` };

async function signIn(handler: ReturnType<typeof createHandler>): Promise<string> {
  const response = await handler(
    new Request(url("/login"), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: TOKEN }),
    }),
  );
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "/");
  const cookie = response.headers.get("set-cookie") ?? "";
  assert.match(cookie, /^nsqworker_session=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict$/);
  assert.ok(!cookie.includes(TOKEN), "the cookie does not hold the token");
  return cookie.split(";")[0]!;
}

Deno.test("with a token, the page and its reads are 401 and show nothing until it is given", async () => {
  const { handler } = pageHandler();
  const page = await handler(new Request(url("/")));
  assert.equal(page.status, 401);
  const html = await page.text();
  assert.match(html, /id="login-form" method="post" action="\/login"/);
  assert.ok(!html.includes("pageviews"), "no entry is named");
  for (const path of ["/page/state", "/page/history", "/page/dead-letters", "/page/events"]) {
    const response = await handler(new Request(url(path)));
    assert.equal(response.status, 401, path);
    await response.body?.cancel();
  }
  const cookie = await signIn(handler);
  const signedIn = await handler(new Request(url("/"), { headers: { Cookie: cookie } }));
  assert.equal(signedIn.status, 200);
  assert.match(await signedIn.text(), /<tr data-entry="pageviews\/counter">/);
  const state = await handler(new Request(url("/page/state"), { headers: bearer }));
  assert.equal(state.status, 200);
  const body = await state.json();
  assert.equal(body.entries[0].key, "pageviews/counter");
  assert.deepEqual(body.entries[0].last_sample, [1, 7, 2, 5, 10]);
  assert.equal(body.dead_letters_written, 1);
  const forged = await handler(
    new Request(url("/page/state"), { headers: { Cookie: "nsqworker_session=" + "0".repeat(64) } }),
  );
  assert.equal(forged.status, 401);
  await forged.body?.cancel();
});

Deno.test("a wrong token at sign-in is a 401 with the form again, and is logged rate-limited", async () => {
  const { handler, calls } = pageHandler();
  for (let i = 0; i < 3; i++) {
    const response = await handler(
      new Request(url("/login"), { method: "POST", body: new URLSearchParams({ token: "nope" }) }),
    );
    assert.equal(response.status, 401);
    assert.equal(response.headers.get("set-cookie"), null);
    assert.match(await response.text(), /not the configured http.token/);
  }
  assert.equal(calls.warnings.length, 1);
  const json = await handler(
    new Request(url("/login"), {
      method: "POST",
      headers: { Accept: "application/json" },
      body: "token=nope",
    }),
  );
  assert.equal(json.status, 401);
  assert.deepEqual(await json.json(), { error: "the token is not the configured http.token" });
  const big = await handler(
    new Request(url("/login"), { method: "POST", body: "token=" + "x".repeat(5000) }),
  );
  assert.equal(big.status, 413);
  await big.body?.cancel();
});

Deno.test("without a token the page is open and the actions are disabled", async () => {
  const { handler, calls } = pageHandler({ token: null });
  const page = await handler(new Request(url("/")));
  assert.equal(page.status, 200);
  assert.match(await page.text(), /data-token="none"/);
  const replay = await handler(
    new Request(url("/dead-letters/replay"), { method: "POST", headers: bearer }),
  );
  assert.equal(replay.status, 403);
  await replay.body?.cancel();
  assert.deepEqual(calls.replays, []);
});

Deno.test("every answer carries the Content-Security-Policy; the page has no inline script or style", async () => {
  const { handler } = pageHandler({ token: null });
  for (const path of ["/", "/page.js", "/page.css", "/stats", "/nope", "/ping"]) {
    const response = await handler(
      new Request(url(path), { method: path === "/ping" ? "POST" : "GET" }),
    );
    const csp = response.headers.get("content-security-policy");
    assert.equal(
      csp,
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      path,
    );
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    await response.body?.cancel();
  }
  const html = await (await handler(new Request(url("/")))).text();
  assert.deepEqual(html.match(/<script[^>]*>/g), ['<script src="/page.js" defer>']);
  // No event handler attribute, style attribute or element, or script URL in any tag.
  assert.doesNotMatch(html, /<[^>]*\s(on[a-z]+|style)=|<style|javascript:/i);
});

Deno.test("a message's markup is escaped in the rendered page", async () => {
  const { handler } = pageHandler({ token: null });
  const html = await (await handler(new Request(url("/")))).text();
  assert.ok(!html.includes(XSS), "the body is never HTML");
  assert.ok(html.includes("&#60;img src=x onerror=alert(1)&#62;"));
  const list = await (await handler(new Request(url("/page/dead-letters?reason=max_attempts"))))
    .json();
  assert.equal(list.matching, 1);
  assert.deepEqual(list.shown[0].preview, { encoding: "text", text: XSS, cut: false });
  assert.deepEqual(list.depths, [{
    topic: "env.pageviews.dead",
    depth: 4,
    channels: [],
    problems: [],
  }]);
  const none = await (await handler(new Request(url("/page/dead-letters?reason=decode")))).json();
  assert.equal(none.matching, 0);
});

Deno.test("the rendered page shows an entry's breaker and each of its children", async () => {
  // As a fresh `breaker: {}` and `processes: 1` report them.
  const { handler } = pageHandler({
    token: null,
    entry: {
      breaker: {
        state: "closed",
        openedAt: null,
        failureRate: null,
        runs: 0,
        transitions: { closed: 0, open: 0, half_open: 0 },
        excused: 0,
      },
      children: [{ pid: 4242, rssBytes: 61_234_567, restarts: 1, inFlight: 3 }],
    },
  });
  const html = await (await handler(new Request(url("/")))).text();
  const cell = html.match(/<td data-field="state">(.*?)<\/td>/s)?.[1] ?? "";
  assert.match(cell, /^running<br><small data-field="breaker">breaker closed<\/small>/);
  assert.match(
    cell,
    /<ul data-field="children"><li>pid 4242 · 61\.2 MB · 1 restart · 3 in flight<\/li><\/ul>/,
  );

  // Opened, and its child being replaced.
  const opened = pageHandler({
    token: null,
    entry: {
      breaker: {
        state: "open",
        openedAt: Date.parse("2025-01-02T12:00:03.250Z"),
        failureRate: 0.6,
        runs: 0,
        transitions: { closed: 0, open: 1, half_open: 0 },
        excused: 4,
      },
      children: [{ pid: null, rssBytes: 0, restarts: 2, inFlight: 0 }],
    },
  }).handler;
  const openedHtml = await (await opened(new Request(url("/")))).text();
  assert.match(
    openedHtml,
    /<small data-field="breaker">breaker open since 12:00:03 UTC · failure rate 60% · 4 requeued while open<\/small>/,
  );
  assert.match(openedHtml, /<li>no process \(restarting\) · 2 restarts · 0 in flight<\/li>/);
});

Deno.test("replay: POST with the token and a JSON filter; one at a time; GET is 405", async () => {
  const release = Promise.withResolvers<void>();
  const filters: ReplayFilter[] = [];
  const { handler } = pageHandler({
    replay: async (filter) => {
      filters.push(filter);
      await release.promise;
      return { replayed: 3, skipped: 1, left: 1, failed: 0, truncated: 0, foreign: 0, errors: [] };
    },
  });
  const post = (body: string, headers: Record<string, string> = bearer) =>
    handler(new Request(url("/dead-letters/replay"), { method: "POST", headers, body }));
  const get = await handler(new Request(url(`/dead-letters/replay?token=${TOKEN}`)));
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  await get.body?.cancel();
  const refused = await post("{}", { Authorization: "Bearer wrong" });
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
  for (const [body, status] of [["[1]", 400], ['{"reason":5}', 400], ["{", 400]] as const) {
    const response = await post(body);
    assert.equal(response.status, status, body);
    assert.match((await response.json()).error, /entry|JSON/);
  }
  const unknown = await post('{"entry":"nope/c"}');
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();

  const first = post('{"entry":"pageviews/counter","reason":"max_attempts","match":"503"}');
  while (filters.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const second = await post("{}");
  assert.equal(second.status, 409);
  await second.body?.cancel();
  release.resolve();
  const answer = await first;
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), {
    topics: ["env.pageviews.dead"],
    replayed: 3,
    skipped: 1,
    left: 1,
    failed: 0,
    truncated: 0,
    foreign: 0,
    errors: [],
  });
  assert.deepEqual(filters, [{
    topics: ["env.pageviews.dead"],
    reasons: ["max_attempts"],
    workers: ["demo/pageview"],
    match: "503",
  }]);
});

Deno.test("pause on nsqd: scope=nsqd pauses the channel itself; a failed nsqd is a 502; a bad scope 400", async () => {
  const { handler, calls } = pageHandler();
  const post = (path: string) =>
    handler(new Request(url(path), { method: "POST", headers: bearer }));
  const paused = await post("/entries/pageviews/counter/pause?scope=nsqd");
  assert.equal(paused.status, 200);
  assert.deepEqual(await paused.json(), {
    topic: "pageviews",
    channel: "counter",
    scope: "nsqd",
    paused: true,
    nsqds: [{ nsqd: "127.0.0.1:4150", result: "done" }],
  });
  const unknown = await post("/entries/other/counter/resume?scope=nsqd");
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  const bad = await post("/entries/pageviews/counter/pause?scope=everywhere");
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  assert.deepEqual(calls.channelPauses, [["pageviews", "counter", true], [
    "other",
    "counter",
    false,
  ]]);

  const failing = pageHandler({ failNsqd: true }).handler;
  const failed = await failing(
    new Request(url("/entries/pageviews/counter/pause?scope=nsqd"), {
      method: "POST",
      headers: bearer,
    }),
  );
  assert.equal(failed.status, 502);
  assert.equal((await failed.json()).nsqds[0].error, "refused");
});

Deno.test("the live state streams as server-sent events and ends when the daemon stops", async () => {
  const { handler, closing } = pageHandler({ token: null });
  const response = await handler(new Request(url("/page/events")));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n\n")) text += (await reader.read()).value ?? "";
  assert.match(text, /^event: state\ndata: \{/);
  const state = JSON.parse(text.split("\n")[1]!.slice("data: ".length));
  assert.equal(state.entries[0].outcomes.finish, 1);
  closing.abort();
  while (!(await reader.read()).done);
  // HEAD starts no stream whose body nobody would read.
  const head = await handler(new Request(url("/page/events"), { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
});
