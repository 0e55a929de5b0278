/**
 * The admin HTTP surface under abuse while the daemon consumes (fast
 * versions of the soak's, soak/admin_abuse_test.ts): `/metrics` and
 * `/stats` polled hard, a slowloris client holding half-sent requests, a
 * 10 MiB body to a pause endpoint and a wrong token over and over.
 */

import assert from "node:assert/strict";
import { waitFor } from "../helpers/wait_for.ts";
import {
  type AdminSetup,
  BIG_BODY_BYTES,
  guessTokens,
  holdHalfSentRequests,
  logLines,
  pingMs,
  postBigBody,
  setupAdmin,
  startPolling,
  TOKEN,
  WRONG_TOKEN_WARNING,
} from "./admin_abuse.ts";
import { makeIds, reportFigures } from "./ledger.ts";

/** Publishes `count` ids at once and resolves with the messages handled per second. */
async function throughput(s: AdminSetup, prefix: string, count: number): Promise<number> {
  const ids = makeIds(prefix, count);
  const before = s.ledger.distinctHandled;
  await s.nsq.publishMany(s.topic, ids);
  s.ledger.published(ids);
  const started = performance.now();
  await waitFor(() => s.ledger.distinctHandled >= before + count, {
    intervalMs: 5,
    timeoutMs: 30_000,
    message: `${count} handled`,
  });
  return count / ((performance.now() - started) / 1000);
}

Deno.test("/metrics and /stats polled 1,000 times/s while consuming: throughput near the quiet figure", async () => {
  await using s = await setupAdmin();
  await throughput(s, "w", 10_000);
  const quiet = await throughput(s, "q", 10_000);
  const polling = startPolling(s.base, 1_000);
  const busy = await throughput(s, "b", 10_000);
  const { perSecond } = await polling.stop();
  const ratio = busy / quiet;
  reportFigures("admin_polled", {
    quiet_msg_s: Math.round(quiet),
    polled_msg_s: Math.round(busy),
    ratio: Math.round(ratio * 100) / 100,
    requests_s: Math.round(perSecond),
    lost: s.ledger.lost().length,
  });
  assert.deepEqual(s.ledger.lost(10), []);
  // The goal is within 10 %; on a shared two-core machine only a collapse fails.
  assert.ok(ratio > 0.3, `throughput ${Math.round(busy)}/s polled vs ${Math.round(quiet)}/s quiet`);
});

Deno.test("a slowloris client holding 300 half-sent requests: the listener keeps answering others", async () => {
  await using s = await setupAdmin();
  using held = await holdHalfSentRequests(s.address, 300);
  const ms = Math.round(await pingMs(s.base));
  const speed = await throughput(s, "l", 5_000);
  reportFigures("admin_slowloris", { held: held.held, ping_ms: ms, msg_s: Math.round(speed) });
  assert.ok(ms < 2_000, `/ping took ${ms} ms with half-sent requests held`);
});

Deno.test("a 10 MiB body to a pause endpoint, with either token: 413 before reading it, memory flat", async () => {
  await using s = await setupAdmin();
  const rssBefore = Deno.memoryUsage().rss;
  const answers: string[] = [];
  const sentMiB: number[] = [];
  for (let i = 0; i < 6; i++) {
    const token = i % 2 === 0 ? TOKEN : "wrong";
    const { status, sentMiB: sent } = await postBigBody(
      s,
      `Authorization: Bearer ${token}\r\nContent-Length: ${BIG_BODY_BYTES}\r\n`,
    );
    answers.push(status);
    sentMiB.push(sent);
  }
  const grownMiB = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  reportFigures("admin_big_body", {
    answers,
    sent_mib: sentMiB,
    rss_growth_mib: Math.round(grownMiB),
  });
  assert.deepEqual(answers, Array(6).fill("HTTP/1.1 413 Payload Too Large"));
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  // Six 10 MiB bodies buffered would be 60 MiB.
  assert.ok(grownMiB < 20, `RSS grew ${grownMiB} MiB`);
});

Deno.test("a 10 MiB chunked body to a pause endpoint: 413 once past the bound, the rest unread", async () => {
  await using s = await setupAdmin();
  const rssBefore = Deno.memoryUsage().rss;
  const encoder = new TextEncoder();
  const answers: string[] = [];
  for (let i = 0; i < 3; i++) {
    const { status } = await postBigBody(
      s,
      `Authorization: Bearer ${TOKEN}\r\nTransfer-Encoding: chunked\r\n`,
      (
        chunk,
      ) => [encoder.encode(`${chunk.length.toString(16)}\r\n`), chunk, encoder.encode("\r\n")],
      [encoder.encode("0\r\n\r\n")],
    );
    answers.push(status);
  }
  const grownMiB = (Deno.memoryUsage().rss - rssBefore) / 1024 / 1024;
  reportFigures("admin_big_chunked_body", { answers, rss_growth_mib: Math.round(grownMiB) });
  assert.deepEqual(answers, Array(3).fill("HTTP/1.1 413 Payload Too Large"));
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  assert.ok(grownMiB < 20, `RSS grew ${grownMiB} MiB`);
});

Deno.test("a wrong token 2 000 times: all refused, warnings rate-limited", async () => {
  await using s = await setupAdmin();
  const attempts = 2_000;
  const refused = await guessTokens(s, attempts);
  const lines = logLines(s.daemon, WRONG_TOKEN_WARNING);
  reportFigures("admin_wrong_token", { attempts, refused, warning_lines: lines.length });
  assert.equal(refused, attempts);
  assert.equal(s.daemon.supervisor.entries[0]!.consumer.status().paused, false);
  assert.ok(lines.length >= 1, "a wrong token leaves no trace in the log");
  assert.ok(lines.length <= 5, `${lines.length} warning lines for ${attempts} wrong tokens`);
  const counted = lines.reduce((sum, line) => sum + Number(line.refused), 0);
  assert.ok(counted >= 1 && counted <= attempts);
});
