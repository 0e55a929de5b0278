import assert from "node:assert/strict";
import type { LogConfig } from "../../src/config/types.ts";
import { getLogger } from "@logtape/logtape";
import {
  boundLogger,
  flushLogging,
  isLogged,
  logger,
  setupLogging,
} from "../../src/observe/log.ts";
import type { Logger } from "../../src/worker/worker.ts";

/** Sets up logging into an array, returned. */
async function capture(config: LogConfig): Promise<string[]> {
  const lines: string[] = [];
  await setupLogging(config, { write: (line) => lines.push(line) });
  return lines;
}

function parse(lines: readonly string[]): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line));
}

Deno.test("json: one object a line with the fixed fields, properties flat", async () => {
  const lines = await capture({ level: "debug", format: "json" });
  logger("test").info("pageview", { clicks: 1, topic: "pageviews" });
  await flushLogging();

  assert.equal(lines.length, 1);
  assert.ok(!lines[0]!.includes("\n"));
  const [record] = parse(lines);
  assert.deepEqual(Object.keys(record!), ["time", "level", "msg", "logger", "clicks", "topic"]);
  assert.equal(record!.level, "info");
  assert.equal(record!.msg, "pageview");
  assert.equal(record!.logger, "nsqworker.test");
  assert.equal(record!.clicks, 1);
  assert.equal(record!.topic, "pageviews");
  const time = record!.time as string;
  assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000);
});

Deno.test("json: every level name", async () => {
  const lines = await capture({ level: "debug", format: "json" });
  const log = logger("levels");
  log.debug("d");
  log.info("i");
  log.warning("w");
  log.error("e");
  await flushLogging();

  assert.deepEqual(parse(lines).map((r) => [r.level, r.msg]), [
    ["debug", "d"],
    ["info", "i"],
    ["warning", "w"],
    ["error", "e"],
  ]);
});

Deno.test("level filter keeps the configured level and above", async () => {
  const lines = await capture({ level: "warning", format: "json" });
  const log = logger("filter");
  log.debug("d");
  log.info("i");
  log.warning("w");
  log.error("e");
  await flushLogging();

  assert.deepEqual(parse(lines).map((r) => r.level), ["warning", "error"]);
});

Deno.test("no output at all below the level, not even LogTape's notice", async () => {
  const lines = await capture({ level: "error", format: "json" });
  const log = boundLogger(logger("quiet"), { topic: "t" });
  log.debug("d", { n: 1 });
  log.info("i");
  log.warning("w");
  await flushLogging();

  assert.deepEqual(lines, []);
});

Deno.test("bound loggers add their fields; a call's properties override them", async () => {
  const lines = await capture({ level: "debug", format: "json" });
  const entry = boundLogger(logger("worker"), {
    topic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
  });
  const message = boundLogger(entry, { msg_id: "0a1b2c3d4e5f6789", attempts: 2 });
  message.debug("finish", { outcome: "finish", duration_ms: 3.5 });
  message.info("override", { attempts: 9 });
  entry.info("entry only");
  await flushLogging();

  const [finish, override, entryOnly] = parse(lines);
  assert.deepEqual(finish, {
    time: finish!.time,
    level: "debug",
    msg: "finish",
    logger: "nsqworker.worker",
    topic: "pageviews",
    channel: "counter",
    worker: "demo/pageview",
    msg_id: "0a1b2c3d4e5f6789",
    attempts: 2,
    outcome: "finish",
    duration_ms: 3.5,
  });
  assert.equal(override!.attempts, 9);
  assert.equal(entryOnly!.msg_id, undefined);
  assert.equal(entryOnly!.topic, "pageviews");
});

Deno.test("boundLogger works on any Logger", () => {
  const calls: [string, Record<string, unknown> | undefined][] = [];
  const fake: Logger = {
    debug: (m, p) => calls.push([m, p]),
    info: (m, p) => calls.push([m, p]),
    warning: (m, p) => calls.push([m, p]),
    error: (m, p) => calls.push([m, p]),
  };
  const bound = boundLogger(boundLogger(fake, { a: 1 }), { b: 2 });
  bound.warning("w", { c: 3 });
  bound.error("e");
  assert.deepEqual(calls, [["w", { a: 1, b: 2, c: 3 }], ["e", { a: 1, b: 2 }]]);
});

Deno.test("bigint, cycles and other awkward values do not lose the line", async () => {
  const lines = await capture({ level: "info", format: "json" });
  const cycle: Record<string, unknown> = { name: "loop" };
  cycle.self = cycle;
  const shared = { x: 1 };
  const throwing = {
    toJSON() {
      throw new Error("no JSON for you");
    },
  };
  const log = logger("awkward");
  log.info("values", {
    big: 12345678901234567890n,
    cycle,
    twice: [shared, shared],
    map: new Map<string, unknown>([["k", 1n]]),
    set: new Set([1, 2]),
    bytes: new Uint8Array(5),
    fn: () => 1,
    undef: undefined,
  });
  log.info("throwing", { bad: throwing, good: 1 });
  await flushLogging();

  assert.equal(lines.length, 2);
  const [values, bad] = parse(lines);
  assert.equal(values!.big, "12345678901234567890");
  assert.deepEqual(values!.cycle, { name: "loop", self: "[Circular]" });
  assert.deepEqual(values!.twice, [{ x: 1 }, { x: 1 }]);
  assert.deepEqual(values!.map, { k: "1" });
  assert.deepEqual(values!.set, [1, 2]);
  assert.equal(values!.bytes, "[Uint8Array 5 bytes]");
  assert.ok(!("fn" in values!));
  assert.ok(!("undef" in values!));
  assert.equal(bad!.msg, "throwing");
  assert.equal(bad!.bad, "[Unserializable]");
  assert.equal(bad!.good, 1);
});

Deno.test("a property that cannot even be read still leaves a line", async () => {
  const lines = await capture({ level: "info", format: "json" });
  const properties = {
    get bad(): number {
      throw new Error("getter failed");
    },
  };
  logger("getter").info("unreadable", properties);
  await flushLogging();
  const [record] = parse(lines);
  assert.equal(record!.msg, "unreadable");
  assert.equal(record!.log_error, "getter failed");
});

Deno.test("errors render as their message; the stack only at debug level", async () => {
  const error = new TypeError("boom");
  let lines = await capture({ level: "info", format: "json" });
  logger("errors").error("failed", { error, nested: { cause: error } });
  const [info] = parse(lines);
  assert.equal(info!.error, "boom");
  assert.deepEqual(info!.nested, { cause: "boom" });
  assert.ok(!("error_stack" in info!));

  lines = await capture({ level: "debug", format: "json" });
  logger("errors").error("failed", { error });
  await flushLogging();
  const [debug] = parse(lines);
  assert.equal(debug!.error, "boom");
  assert.equal(debug!.error_stack, error.stack);
});

Deno.test("messages are literal: braces are not placeholders", async () => {
  const lines = await capture({ level: "info", format: "json" });
  logger("braces").info('bad body {"a":1} {clicks}', { clicks: 1 });
  await flushLogging();
  assert.equal(parse(lines)[0]!.msg, 'bad body {"a":1} {clicks}');
});

Deno.test("a property named like a fixed field is kept under another name", async () => {
  const lines = await capture({ level: "info", format: "json" });
  logger("clash").info("real", { msg: "fake", level: 1 });
  await flushLogging();
  const [record] = parse(lines);
  assert.equal(record!.msg, "real");
  assert.equal(record!.level, "info");
  assert.equal(record!._msg, "fake");
  assert.equal(record!._level, 1);
});

Deno.test("pretty: time, level, message and key=value fields, no colors when captured", async () => {
  const lines = await capture({ level: "debug", format: "pretty" });
  boundLogger(logger("worker"), { topic: "pageviews" }).info("pageview", {
    clicks: 1,
    note: "two words",
    error: new Error("bad thing"),
  });
  logger("worker").warning("line\nbreak");
  await flushLogging();

  assert.equal(lines.length, 2);
  assert.match(
    lines[0]!,
    /^\d\d:\d\d:\d\d\.\d{3} INFO {2}pageview topic=pageviews clicks=1 note="two words" error="bad thing" logger=nsqworker\.worker$/,
  );
  assert.match(lines[1]!, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}line\\nbreak logger=nsqworker\.worker$/);
  assert.ok(!lines.join("").includes("\x1b["));
});

Deno.test("reconfiguring replaces the level, format and writer", async () => {
  const first = await capture({ level: "debug", format: "json" });
  const log = logger("reload");
  log.debug("before");
  const second = await capture({ level: "warning", format: "pretty" });
  log.debug("after, filtered");
  log.warning("after");
  await flushLogging();

  assert.deepEqual(parse(first).map((r) => r.msg), ["before"]);
  assert.equal(second.length, 1);
  assert.match(second[0]!, /WARN {2}after/);
});

Deno.test("loggers made before the first setup log through every later one", async () => {
  // Loggers are made at import time, long before setupLogging runs; each
  // configuration must reach them, bound fields included.
  const early = boundLogger(logger("early"), { topic: "pageviews" });
  const first = await capture({ level: "info", format: "json" });
  early.info("one", { n: 1 });
  const second = await capture({ level: "debug", format: "json" });
  early.debug("two", { n: 2 });
  await flushLogging();

  const [one] = parse(first);
  assert.deepEqual({ ...one, time: 0 }, {
    time: 0,
    level: "info",
    msg: "one",
    logger: "nsqworker.early",
    topic: "pageviews",
    n: 1,
  });
  assert.deepEqual(parse(second).map((r) => [r.level, r.msg, r.topic, r.n]), [
    ["debug", "two", "pageviews", 2],
  ]);
});

Deno.test("records made by LogTape's own API come out in our format", async () => {
  const lines = await capture({ level: "info", format: "json" });
  getLogger(["nsqworker", "tape"]).with({ topic: "pageviews" }).warning("as given {topic}", {
    n: 1,
  });
  getLogger(["nsqworker", "tape"]).debug("below the level");
  await flushLogging();

  assert.deepEqual(parse(lines).map((r) => ({ ...r, time: 0 })), [{
    time: 0,
    level: "warning",
    msg: "as given {topic}",
    logger: "nsqworker.tape",
    topic: "pageviews",
    n: 1,
  }]);
});

Deno.test("isLogged gives LogTape's answer for the configured level", async () => {
  for (const level of ["debug", "info", "warning", "error"] as const) {
    const lines = await capture({ level, format: "json" });
    for (const asked of ["debug", "info", "warning", "error"] as const) {
      assert.equal(
        isLogged(asked),
        getLogger("nsqworker").isEnabledFor(asked),
        `${level}/${asked}`,
      );
      lines.length = 0;
      logger("gate")[asked]("line");
      assert.equal(lines.length, isLogged(asked) ? 1 : 0, `${level}/${asked}`);
    }
  }
  // Last configured at "error": the answers must not be all false or all true.
  assert.equal(isLogged("error"), true);
  assert.equal(isLogged("warning"), false);
  await flushLogging();
});

Deno.test("a throwing writer never reaches the caller", async () => {
  await setupLogging({ level: "debug", format: "json" }, {
    write: () => {
      throw new Error("disk full");
    },
  });
  logger("throws").error("still fine", { big: 1n });
  await flushLogging();
});

Deno.test("stdout by default: whole lines in order, nothing else, no colors in a pipe", async () => {
  const code = `
    import { flushLogging, logger, setupLogging } from ${
    JSON.stringify(import.meta.resolve("../../src/observe/log.ts"))
  };
    await setupLogging({ level: "info", format: Deno.args[0] });
    const log = logger("stdout");
    for (let i = 0; i < 2000; i++) log.info("line", { i, pad: "x".repeat(i % 300) });
    log.debug("filtered");
    await flushLogging();
  `;
  for (const format of ["json", "pretty"]) {
    const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", code, format],
      cwd: new URL("../..", import.meta.url),
      stdin: "null",
    }).output();
    assert.equal(new TextDecoder().decode(stderr), "");
    assert.equal(status, 0);
    const lines = new TextDecoder().decode(stdout).split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(lines.length, 2000);
    if (format === "json") {
      assert.deepEqual(parse(lines).map((r) => r.i), [...Array(2000).keys()]);
    } else {
      lines.forEach((line, i) => assert.match(line, new RegExp(`^\\S+ INFO  line i=${i} `)));
      assert.ok(!lines.join("").includes("\x1b["));
    }
  }
});
