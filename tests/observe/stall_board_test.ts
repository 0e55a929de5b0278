/**
 * The stall watchdog's board: what the daemon's thread writes is what the
 * watchdog reads back from the shared buffer, and its fatal line names it.
 */
import assert from "node:assert/strict";
import {
  LISTED_IN_FLIGHT,
  readBeat,
  readStallBoard,
  StallBoard,
} from "../../src/observe/stall_board.ts";
import { stallLine } from "../../src/observe/stall_line.ts";

const PAGEVIEWS = { topic: "pageviews", channel: "counter", worker: "demo/pageview" };
const CLICKS = { topic: "clicks", channel: "sum", worker: "demo/clicks" };

function message(i: number) {
  return { id: `0a1b2c3d4e5f${String(i).padStart(4, "0")}`, attempts: i % 7 + 1 };
}

Deno.test("the message started last is read back with its entry, until the next heartbeat", () => {
  const board = new StallBoard();
  const pageviews = board.entry(PAGEVIEWS);
  const clicks = board.entry(CLICKS);
  assert.equal(readStallBoard(board.buffer).last, null);
  pageviews.started({ id: "0a1b2c3d4e5f6789", attempts: 2 });
  clicks.started({ id: "ffffffffffffffff", attempts: 4 });
  assert.deepEqual(readStallBoard(board.buffer).last, {
    entry: clicks.number,
    phase: "message",
    id: "ffffffffffffffff",
    attempts: 4,
  });
  const before = readBeat(board.buffer);
  board.beat();
  assert.equal(readBeat(board.buffer), before + 1);
  assert.equal(readStallBoard(board.buffer).last, null);
});

Deno.test("setup() and teardown() are read as such, without a message", () => {
  const board = new StallBoard();
  const entry = board.entry(PAGEVIEWS);
  entry.entered("setup");
  assert.deepEqual(readStallBoard(board.buffer).last, {
    entry: entry.number,
    phase: "setup",
    id: null,
    attempts: 0,
  });
  entry.entered("teardown");
  assert.equal(readStallBoard(board.buffer).last?.phase, "teardown");
});

Deno.test("a heartbeat lists the messages in flight, at most LISTED_IN_FLIGHT, and counts the rest", () => {
  const board = new StallBoard();
  const pageviews = board.entry(PAGEVIEWS);
  const clicks = board.entry(CLICKS);
  board.beat();
  assert.deepEqual(readStallBoard(board.buffer).inFlight, []);

  const first = [message(1), message(2)];
  for (const m of first) pageviews.inFlight.add(m);
  clicks.inFlight.add(message(3));
  board.beat();
  const snapshot = readStallBoard(board.buffer);
  assert.deepEqual(snapshot.inFlight, [
    { entry: pageviews.number, ...message(1) },
    { entry: pageviews.number, ...message(2) },
    { entry: clicks.number, ...message(3) },
  ]);
  assert.equal(snapshot.unlisted, 0);

  for (let i = 4; i < LISTED_IN_FLIGHT + 20; i++) clicks.inFlight.add(message(i));
  board.beat();
  const full = readStallBoard(board.buffer);
  assert.equal(full.inFlight.length, LISTED_IN_FLIGHT);
  assert.deepEqual(full.inFlight.at(-1), { entry: clicks.number, ...message(LISTED_IN_FLIGHT) });
  // 2 of pageviews and LISTED_IN_FLIGHT + 17 of clicks, all but LISTED_IN_FLIGHT unlisted.
  assert.equal(full.unlisted, 19);
});

Deno.test("entries are named by number while registered; onEntries is told of each change", () => {
  const board = new StallBoard();
  let told = 0;
  board.onEntries = () => told++;
  const pageviews = board.entry(PAGEVIEWS);
  const clicks = board.entry(CLICKS);
  assert.deepEqual(
    board.names(),
    new Map([[pageviews.number, PAGEVIEWS], [clicks.number, CLICKS]]),
  );
  pageviews.inFlight.add(message(1));
  pageviews.leave();
  assert.deepEqual(board.names(), new Map([[clicks.number, CLICKS]]));
  assert.equal(told, 3);
  board.beat();
  assert.deepEqual(readStallBoard(board.buffer).inFlight, []);
});

Deno.test("the fatal line: json with the log's fixed fields, the last started and the in-flight named", () => {
  const board = new StallBoard();
  const pageviews = board.entry(PAGEVIEWS);
  const clicks = board.entry(CLICKS);
  clicks.inFlight.add({ id: "1111111111111111", attempts: 1 });
  board.beat();
  pageviews.started({ id: "0a1b2c3d4e5f6789", attempts: 3 });
  const now = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
  const options = { stallTimeoutMs: 30_000, stalledMs: 31_012.4, color: false, now };
  const line = stallLine(readStallBoard(board.buffer), board.names(), {
    ...options,
    format: "json",
  });
  assert.deepEqual(JSON.parse(line), {
    time: "2026-01-02T03:04:05.006Z",
    level: "error",
    msg: "the daemon's thread has not turned for 31s12ms (stall_timeout 30s): it last started " +
      "message 0a1b2c3d4e5f6789 of pageviews/counter (worker demo/pageview); killing the process " +
      "(SIGKILL) for its service manager to restart it",
    logger: "nsqworker.watchdog",
    stall_timeout: "30s",
    stalled_ms: 31_012,
    in: "message",
    ...PAGEVIEWS,
    msg_id: "0a1b2c3d4e5f6789",
    attempts: 3,
    in_flight: [{ ...CLICKS, msg_id: "1111111111111111", attempts: 1 }],
  });
  const pretty = stallLine(readStallBoard(board.buffer), board.names(), {
    ...options,
    format: "pretty",
  });
  assert.match(pretty, /^\d\d:\d\d:\d\d\.\d{3} ERROR the daemon's thread has not turned/);
  assert.match(pretty, / msg_id=0a1b2c3d4e5f6789 attempts=3 /);
  assert.ok(!pretty.includes("\n"));
});

Deno.test("the fatal line when nothing started since the last heartbeat, and for setup()", () => {
  const board = new StallBoard();
  const pageviews = board.entry(PAGEVIEWS);
  board.beat();
  const options = {
    stallTimeoutMs: 2_000,
    stalledMs: 2_300,
    format: "json",
    color: false,
  } as const;
  const idle = JSON.parse(
    stallLine(readStallBoard(board.buffer), board.names(), { ...options, now: 0 }),
  );
  assert.equal(
    idle.msg,
    "the daemon's thread has not turned for 2s300ms (stall_timeout 2s): " +
      "killing the process (SIGKILL) for its service manager to restart it",
  );
  assert.deepEqual([idle.in, idle.topic, idle.msg_id, idle.in_flight], [
    undefined,
    undefined,
    undefined,
    [],
  ]);
  pageviews.entered("setup");
  const setup = JSON.parse(
    stallLine(readStallBoard(board.buffer), board.names(), { ...options, now: 0 }),
  );
  assert.match(
    setup.msg,
    /it last started setup\(\) of pageviews\/counter \(worker demo\/pageview\)/,
  );
  assert.deepEqual([setup.in, setup.topic, setup.msg_id], ["setup", "pageviews", undefined]);
});
