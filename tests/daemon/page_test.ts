/**
 * The operator's page in a real headless Chromium, served by a daemon
 * running in process on a real nsqd: sign-in with the token, live figures
 * and charts, pause and resume (this daemon and nsqd), dead letters and
 * their replay, and what the page must never do (run a message's markup,
 * act on a GET, accept a wrong token). One browser for the whole file.
 */

import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { createHandler } from "../../src/daemon/http/handler.ts";
import type { PageDeps } from "../../src/daemon/http/page_deps.ts";
import { launchBrowser } from "../helpers/browser.ts";
import { fakeEntry, fakeSnapshot } from "../helpers/fake_snapshot.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const TOKEN = "page-token-0123";
const SCREENSHOT = new URL("../../docs/page.png", import.meta.url);
/** Markup in a message body that would run, were it inserted as HTML. */
const XSS = `<img src=x onerror="window.__xss=1;document.title='pwned'">`;
const SCRIPT = "<script>window.__xss=2</script>";
const BINARY = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80]);

/** The text of every element matching `selector`. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent ?? ""));
}

Deno.test("the page in a real browser: entries live, actions by POST with the token, dead letters inert and replayed", async (t) => {
  await using nsq = await startNsq({ lookupd: false });
  const nsqd = nsq.nsqds[0]!;
  const okTopic = uniqueTopic("pageok");
  const failTopic = uniqueTopic("pagefail");
  let fixed = false;
  const replayed: Uint8Array[] = [];
  await using daemon = await startInProcess({
    yaml: [
      "nsq:",
      `  nsqd_tcp_addresses: [${nsqd.tcpAddress}]`,
      `  nsqd_http_addresses: { "${nsqd.tcpAddress}": "${nsqd.httpUrl}" }`,
      "http:",
      "  listen: 127.0.0.1:0",
      `  token: ${TOKEN}`,
      "workers:",
      `  - { topic: ${okTopic}, channel: work, worker: counter, max_in_flight: 5, breaker: {} }`,
      `  - { topic: ${failTopic}, channel: work, worker: flaky, max_attempts: 1 }`,
      "",
    ].join("\n"),
    workers: {
      counter: { decode: "bytes", handle: () => {} },
      flaky: {
        decode: "bytes",
        handle: (body: Uint8Array) => {
          if (!fixed) {
            throw new Error(`refused ${new TextDecoder().decode(body.subarray(0, 60))}`);
          }
          replayed.push(body.slice());
        },
      },
    },
    historySampleMs: 250,
    logLevel: "info",
  });
  const base = `http://${daemon.http!.addressText}`;
  const okKey = `${okTopic}/work`;
  const failKey = `${failTopic}/work`;
  const browser = await launchBrowser();
  const steps = { sanitizeOps: false, sanitizeResources: false };
  try {
    const page = await browser.newPage();
    const dialogs: string[] = [];
    const errors: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => errors.push(String(error)));

    await t.step({
      ...steps,
      name: "without the token the page is a 401 that shows nothing; a wrong token is refused",
      fn: async () => {
        const response = await page.goto(`${base}/`);
        assert.equal(response?.status(), 401);
        const csp = response?.headers()["content-security-policy"] ?? "";
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /script-src 'self'/);
        assert.doesNotMatch(csp, /unsafe-inline/);
        assert.equal(await page.$eval("#dashboard", (m) => m.hasAttribute("hidden")), true);
        assert.deepEqual(await texts(page, "#entry-rows tr"), []);
        await page.type("#login-form input[name=token]", "not-the-token");
        const refused = page.waitForResponse((r) => r.url().endsWith("/login"));
        await page.click("#login-form button");
        assert.equal((await refused).status(), 401);
        await page.waitForFunction(
          `document.getElementById("login-error").textContent.includes("not the configured")`,
        );
        assert.equal(await page.$eval("#dashboard", (m) => m.hasAttribute("hidden")), true);
        assert.deepEqual(await texts(page, "#entry-rows tr, #dl-rows tr"), []);
      },
    });

    await t.step({
      ...steps,
      name: "with the token the page lists the config's entries",
      fn: async () => {
        await page.$eval("#login-form", (form) => (form as unknown as { reset(): void }).reset());
        await page.type("#login-form input[name=token]", TOKEN);
        await page.click("#login-form button");
        await page.waitForSelector(`tr[data-entry="${okKey}"]`);
        await page.waitForSelector(`tr[data-entry="${failKey}"]`);
        const rows = await page.$$eval(
          "#entry-rows tr",
          (trs) => trs.map((tr) => tr.dataset.entry),
        );
        assert.deepEqual(rows, [okKey, failKey]);
        // The rows were made by the script (the page was a 401 until now).
        const shownBreaker = (key: string) =>
          texts(page, `tr[data-entry="${key}"] td[data-field=state] [data-field=breaker]`);
        assert.deepEqual(await shownBreaker(okKey), ["breaker closed"]);
        assert.deepEqual(await shownBreaker(failKey), [], "no breaker configured");
        const nsqds = await texts(page, `tr[data-entry="${okKey}"] td[data-field=nsqds]`);
        assert.match(nsqds[0]!, new RegExp(`${nsqd.tcpAddress}: RDY \\d+, \\d+ in flight`));
      },
    });

    await t.step({
      ...steps,
      name: "its counters and chart move after messages are published",
      fn: async () => {
        await nsq.publishMany(okTopic, Array.from({ length: 40 }, (_, i) => `m${i}`));
        await page.waitForFunction(
          `document.querySelector('tr[data-entry="${okKey}"] [data-outcome=finish]')` +
            `?.textContent === "40"`,
          { timeout: 10_000 },
        );
        await page.waitForFunction(
          `Number(document.querySelector('tr[data-entry="${okKey}"] svg[data-chart=rate]')` +
            `?.getAttribute("data-max")) > 0`,
          { timeout: 10_000 },
        );
        const points = await page.$eval(
          `tr[data-entry="${okKey}"] svg[data-chart=rate] polyline[data-series=rate]`,
          (line) => line.getAttribute("points") ?? "",
        );
        assert.ok(points.split(" ").length >= 2, `a line of samples: ${points}`);
      },
    });

    const okChannel = async () => {
      const response = await fetch(`${nsqd.httpUrl}/stats?format=json&topic=${okTopic}`);
      const stats = await response.json();
      return stats.topics[0].channels.find((c: { channel_name: string }) =>
        c.channel_name === "work"
      );
    };
    const click = (key: string, action: string, scope: string) =>
      page.click(`tr[data-entry="${key}"] button[data-action=${action}][data-scope=${scope}]`);

    await t.step({
      ...steps,
      name:
        "pause from the page gives RDY 0 on nsqd, resume gives it back; the nsqd scope pauses the channel itself",
      fn: async () => {
        await click(okKey, "pause", "daemon");
        await waitFor(async () => (await okChannel()).clients[0]?.ready_count === 0, {
          message: "RDY 0 on nsqd",
        });
        await page.waitForFunction(
          `document.querySelector('tr[data-entry="${okKey}"] td[data-field=state]')` +
            `?.textContent.includes("paused")`,
        );
        await click(okKey, "resume", "daemon");
        await waitFor(async () => (await okChannel()).clients[0]?.ready_count === 5, {
          message: "RDY 5 on nsqd again",
        });

        assert.equal((await okChannel()).paused, false);
        await click(okKey, "pause", "nsqd");
        await waitFor(async () => (await okChannel()).paused === true, {
          message: "the channel paused on nsqd",
        });
        await page.waitForFunction(
          `document.getElementById("action-result").textContent.includes(": done")`,
        );
        await click(okKey, "resume", "nsqd");
        await waitFor(async () => (await okChannel()).paused === false, {
          message: "the channel unpaused on nsqd",
        });
      },
    });

    const bodies = [new TextEncoder().encode(XSS), new TextEncoder().encode(SCRIPT), BINARY];
    await t.step({
      ...steps,
      name: "a failing worker's dead letters appear with reason and error; markup in them is inert",
      fn: async () => {
        for (const body of bodies) await nsq.publish(failTopic, body);
        await page.waitForFunction(`document.querySelectorAll("#dl-rows tr").length === 3`, {
          timeout: 10_000,
        });
        assert.deepEqual(await texts(page, "#dl-rows td[data-field=reason]"), [
          "max_attempts",
          "max_attempts",
          "max_attempts",
        ]);
        const errorsShown = await texts(page, "#dl-rows td[data-field=error]");
        assert.ok(errorsShown.some((e) => e.includes(`refused ${XSS}`)), errorsShown.join("\n"));
        const shown = await texts(page, "#dl-rows td[data-field=body]");
        assert.ok(shown.some((b) => b.startsWith(XSS)), shown.join("\n"));
        assert.ok(shown.some((b) => b.startsWith(SCRIPT)), shown.join("\n"));
        assert.ok(shown.some((b) => b.startsWith("00 01 02 ff fe 80")), shown.join("\n"));
        // Nothing was made of the markup, and nothing of it ran.
        assert.equal(await page.$$eval("#dl-rows img, #dl-rows script", (n) => n.length), 0);
        assert.equal(await page.evaluate(`typeof window.__xss`), "undefined");
        assert.equal(await page.title(), "nsqworker");
        assert.deepEqual(dialogs, []);
        const depth = await texts(page, `#depths li[data-topic="${failTopic}.dead"] b`);
        assert.deepEqual(depth, ["3"], "nsqd holds the 3 dead letters");
      },
    });

    await t.step({
      ...steps,
      name: "replay from the page republishes them byte-exact; the counts shown are the replay's",
      fn: async () => {
        fixed = true;
        await page.select("#dl-filter select[name=entry]", failKey);
        await page.select("#dl-filter select[name=reason]", "max_attempts");
        await page.click("#replay");
        await page.waitForSelector("#replay-result[data-replayed]", { timeout: 15_000 });
        const counts = await page.$eval("#replay-result", (p) => ({
          replayed: p.getAttribute("data-replayed"),
          skipped: p.getAttribute("data-skipped"),
          left: p.getAttribute("data-left"),
        }));
        assert.deepEqual(counts, { replayed: "3", skipped: "0", left: "0" });
        assert.match(
          await page.$eval("#replay-result", (p) => p.textContent ?? ""),
          /^replayed 3, skipped 0, left 0$/,
        );
        await waitFor(() => replayed.length === 3, { message: "the fixed worker handled 3" });
        const hex = (b: Uint8Array) => b.toHex();
        assert.deepEqual(replayed.map(hex).sort(), bodies.map(hex).sort());
      },
    });

    await t.step({
      ...steps,
      name: "without JavaScript the figures read as a static page",
      fn: async () => {
        const plain = await browser.newPage();
        await plain.setJavaScriptEnabled(false);
        // The session cookie the sign-in set opens the page's reads.
        const response = await plain.goto(`${base}/?entry=${encodeURIComponent(failKey)}`);
        assert.equal(response?.status(), 200);
        assert.equal(
          await plain.$eval(
            `tr[data-entry="${okKey}"] [data-outcome=finish]`,
            (b) => b.textContent,
          ),
          "40",
        );
        assert.equal(await plain.$$eval("#dl-rows tr", (trs) => trs.length), 3);
        assert.match(
          await plain.$eval(`tr[data-entry="${okKey}"] [data-field=breaker]`, (b) => b.textContent),
          /^breaker closed( · failure rate 0%)?$/,
        );
        assert.equal(await plain.$$eval("#dl-rows img, #dl-rows script", (n) => n.length), 0);
        assert.equal(await plain.title(), "nsqworker");
        await plain.close();
      },
    });

    await t.step({
      ...steps,
      name:
        "an entry's children and breaker stay live: a replaced child's new pid, the breaker opening",
      fn: async () => {
        // processes: 1 needs a worker file a child can load: the figures come from a fake here.
        let restarted = false;
        const entry = () =>
          fakeEntry({
            children: [{
              pid: restarted ? 5151 : 4242,
              rssBytes: 0,
              restarts: restarted ? 1 : 0,
              inFlight: 0,
            }],
            breaker: {
              state: restarted ? "open" : "closed",
              openedAt: restarted ? Date.parse("2025-01-02T12:00:03Z") : null,
              failureRate: restarted ? 0.6 : null,
              runs: 0,
              transitions: { closed: 0, open: restarted ? 1 : 0, half_open: 0 },
              excused: 0,
            },
          });
        const closing = new AbortController();
        const fake: PageDeps = {
          sampleMs: 5000,
          historyTaken: () => 0,
          history: () => null,
          deadLetters: () => null,
          topicDepth: (topic) => Promise.resolve({ topic, depth: 0, channels: [], problems: [] }),
          pauseChannel: () => Promise.resolve(null),
          replay: () => Promise.reject(new Error("not in this test")),
          closing: closing.signal,
        };
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          createHandler({
            readiness: () => ({ ready: true, reasons: [] }),
            snapshot: () => fakeSnapshot([entry()]),
            pause: () => null,
            resume: () => null,
            token: null,
            page: fake,
          }),
        );
        const live = await browser.newPage();
        try {
          await live.goto(`http://127.0.0.1:${server.addr.port}/`);
          const children = `tr[data-entry="pageviews/counter"] [data-field=children] li`;
          const breaker = `tr[data-entry="pageviews/counter"] [data-field=breaker]`;
          assert.deepEqual(await texts(live, children), ["pid 4242 · 0 restarts · 0 in flight"]);
          restarted = true;
          await live.waitForFunction(
            `document.querySelector('${children}')?.textContent.startsWith("pid 5151")`,
            { timeout: 5_000 },
          );
          assert.deepEqual(await texts(live, children), ["pid 5151 · 1 restart · 0 in flight"]);
          assert.deepEqual(await texts(live, breaker), [
            "breaker open since 12:00:03 UTC · failure rate 60%",
          ]);
        } finally {
          await live.close();
          closing.abort();
          await server.shutdown();
        }
      },
    });

    await t.step({
      ...steps,
      name: "no action works by GET, nor without the token in the header; every answer has the CSP",
      fn: async () => {
        for (const path of [`/entries/${okTopic}/work/pause`, "/dead-letters/replay", "/login"]) {
          const response = await fetch(`${base}${path}?token=${TOKEN}`, {
            headers: { Cookie: await cookieHeader(page) },
          });
          assert.equal(response.status, 405, path);
          assert.equal(response.headers.get("allow"), "POST");
          assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'/);
          await response.body?.cancel();
        }
        // The session cookie opens reads, never actions.
        const withCookie = await fetch(`${base}/entries/${okTopic}/work/pause`, {
          method: "POST",
          headers: { Cookie: await cookieHeader(page) },
        });
        assert.equal(withCookie.status, 401);
        await withCookie.body?.cancel();
        assert.equal(daemon.supervisor.entries[0]!.consumer.status().paused, false);
        const script = await fetch(`${base}/page.js`);
        assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
        assert.doesNotMatch(await script.text(), /innerHTML|outerHTML|insertAdjacentHTML/);
        assert.deepEqual(errors, [], "the page's script threw");
      },
    });

    await t.step({
      ...steps,
      name: "a screenshot of the page for the docs",
      fn: async () => {
        await page.select("#dl-filter select[name=entry]", "");
        await page.select("#dl-filter select[name=reason]", "");
        const png = await page.screenshot({ fullPage: true });
        assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
        // Rewritten on request only, so that a test run leaves the checkout clean.
        const missing = await Deno.stat(SCREENSHOT).then(() => false, () => true);
        if (missing || Deno.env.get("UPDATE_SCREENSHOT") === "1") {
          await Deno.writeFile(SCREENSHOT, png);
        }
      },
    });
  } finally {
    await browser.close();
  }
});

/** The page's cookies as a `Cookie` header. */
async function cookieHeader(page: Page): Promise<string> {
  const cookies = await page.browserContext().cookies();
  return cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}
