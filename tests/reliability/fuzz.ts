/**
 * Fuzzing of the two parsers that take outside input: the config parser
 * (valid configs, randomly mutated) and the decode path (random bytes
 * through `decodeBody` and the task runner). Shared by the fast tests and
 * the soak, which differ only in iterations. Every case is drawn from a
 * seeded PRNG; a failure names the seed and the iteration, and shows the
 * input.
 *
 * @module
 */

import { draftConfig } from "../../src/config/load.ts";
import { MemoryStore } from "../../src/dedupe/memory_store.ts";
import { PermanentError } from "../../src/worker/permanent_error.ts";
import { decodeBody, DecodeError } from "../../src/runner/decode.ts";
import { OUTCOME_KINDS } from "../../src/runner/outcome.ts";
import { type TaskMessage, TaskRunner } from "../../src/runner/task_runner.ts";
import type { Decode, WorkerDefinition } from "../../src/worker/worker.ts";
import { Prng } from "./prng.ts";
import { fakeContext } from "../helpers/fakes.ts";

/** A fuzz case that broke a rule: what was given, and how to replay it. */
export class FuzzFailure extends Error {
  constructor(what: string, seed: number, iteration: number, input: string, cause: unknown) {
    const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      `${what} broke on iteration ${iteration} (replay with RELIABILITY_SEED=${seed}): ${reason}\n` +
        `--- input ---\n${input}\n--- end of input ---`,
      { cause },
    );
    this.name = "FuzzFailure";
  }
}

/** What a config fuzz run saw. */
export interface ConfigFuzzFigures {
  readonly iterations: number;
  readonly configs: number;
  readonly refused: number;
  readonly issues: number;
  /** Inputs that broke the rule; the run goes on past them, to count them all. */
  readonly failures: number;
  /** The first of them, with its input and how to replay it. */
  readonly firstFailure: string | null;
  readonly slowestMs: number;
  readonly seed: number;
}

/** Valid configs the mutations start from. */
export async function configSeeds(): Promise<string[]> {
  const read = (path: string) => Deno.readTextFile(new URL(path, import.meta.url));
  return [
    await read("../fixtures/config/spec_example.yaml"),
    [
      "nsq:",
      "  lookupd_http_addresses: [127.0.0.1:4161, 'http://[::1]:4161']",
      "  nsqd_tcp_addresses: ['${NSQD:-127.0.0.1:4150}']",
      "  topic_prefix: ${PREFIX:-}",
      "  tls: { ca_file: ca.pem, insecure_skip_verify: false }",
      "defaults: &defaults",
      "  max_in_flight: ${MIF:-10}",
      "  requeue_delay: 1h30m",
      "  rate_limit: 200/s",
      "dedupe: { store: 'redis://user:pw@127.0.0.1:6379/2', ttl: 7d }",
      "http: { listen: '0.0.0.0:0', token: '${TOKEN:-s3cret}' }",
      "workers:",
      "  - { topic: a#ephemeral, channel: b, worker: x/y_z, options: { k: [1, { m: *defaults }] } }",
      "  - topic: 2024",
      "    channel: c-d.e",
      "    worker: demo/pageview",
      "    dead_letter_topic: null",
      "",
    ].join("\n"),
  ];
}

/** YAML-significant fragments and values at the edges of the kinds. */
const TOKENS = [
  ":",
  ": ",
  "-",
  "- ",
  "[",
  "]",
  "{",
  "}",
  ",",
  "#",
  "&a ",
  "*a",
  "*defaults",
  "!!str ",
  "!!binary ",
  "!!set ",
  "!!omap ",
  "!ruby/object ",
  "|",
  ">-",
  "'",
  '"',
  "%YAML 1.1\n",
  "@",
  "`",
  "\n",
  "\n  ",
  "\n- ",
  "\t",
  "${",
  "${X}",
  "${X:-1}",
  "${UNSET}",
  "$$",
  "${A:-${B}}",
  "?",
  "? ",
  "<<: *defaults",
  "~",
  "null",
  ".inf",
  "-.nan",
  "0x1F",
  "0o17",
  "1e309",
  "99999999999999999999",
  "-1",
  "0",
  "2.5",
  "true",
  "yes",
  "\u0000",
  "\ufeff",
  "\u2028",
  "😀",
  "a".repeat(70),
  "../x",
  "/etc/passwd",
  "file:///x",
  "10.0.0.1:4190",
  "[::]:0",
  "65536",
  "0ms",
  "25h",
  "31d",
  "1/s",
  "---\n",
  "...\n",
  "\\",
  "\\u0000",
  "\r\n",
  " ",
  "  ",
];

/** One random edit of `text`. */
function mutate(random: Prng, text: string): string {
  const at = random.int(0, text.length);
  const lines = text.split("\n");
  const line = random.int(0, Math.max(0, lines.length - 1));
  switch (random.int(0, 7)) {
    case 0:
      return text.slice(0, at) + text.slice(Math.min(text.length, at + random.int(1, 12)));
    case 1:
      return text.slice(0, at) + random.pick(TOKENS) + text.slice(at);
    case 2:
      lines.splice(line, 0, lines[line] ?? "");
      return lines.join("\n");
    case 3: {
      const other = random.int(0, Math.max(0, lines.length - 1));
      [lines[line], lines[other]] = [lines[other] ?? "", lines[line] ?? ""];
      return lines.join("\n");
    }
    case 4:
      lines[line] = random.chance(0.5)
        ? `  ${lines[line]}`
        : (lines[line] ?? "").replace(/^ {1,2}/, "");
      return lines.join("\n");
    case 5: {
      // Replace the value of a `key: value` line.
      const current = lines[line] ?? "";
      const colon = current.indexOf(": ");
      if (colon === -1) return text;
      lines[line] = `${current.slice(0, colon + 2)}${random.pick(TOKENS)}`;
      return lines.join("\n");
    }
    case 6:
      return text.slice(0, at);
    default: {
      const byte = String.fromCharCode(random.int(0, 0x7f));
      return text.slice(0, at) + byte + text.slice(at + 1);
    }
  }
}

const ENVS: Record<string, string>[] = [
  {},
  { X: "1", MIF: "ten", PREFIX: "env.", NSQD: "127.0.0.1:0" },
  { X: "", TOKEN: "", A: "${B}" },
  { X: "a: b\n- c", MIF: "2501", PREFIX: "bad/" },
];

function isDeepFrozen(value: unknown, seen = new Set<unknown>()): boolean {
  if (typeof value !== "object" || value === null || seen.has(value)) return true;
  seen.add(value);
  if (!Object.isFrozen(value)) return false;
  return Object.values(value).every((child) => isDeepFrozen(child, seen));
}

/** Checks one parse: a frozen Config, or no config and issues that are every one placed. */
function checkParse(text: string, env: Record<string, string>): "config" | number {
  const { config, issues } = draftConfig(text, "fuzz.yaml", env);
  if (config === null) {
    if (issues.length === 0) throw new Error("a refused config without issues");
    const lineCount = text.split("\n").length;
    for (const issue of issues) {
      if (typeof issue.message !== "string" || issue.message === "") {
        throw new Error(`an issue without a message: ${JSON.stringify(issue)}`);
      }
      if (issue.message.includes("\n    at ")) throw new Error(`a stack trace: ${issue.message}`);
      const placed = issue.line !== null && issue.col !== null && issue.line >= 1 &&
        issue.line <= lineCount + 1 && issue.col >= 1;
      const unplacedDocument = issue.line === null && issue.path === "" &&
        issue.message.includes("empty document");
      if (!placed && issue.path === "" && !unplacedDocument) {
        throw new Error(
          `an issue with neither a position nor a key path: ${JSON.stringify(issue)}`,
        );
      }
    }
    return issues.length;
  }
  if (issues.length > 0) throw new Error("a Config with issues");
  if (!isDeepFrozen(config)) throw new Error("a Config that is not deeply frozen");
  if (config.workers.length === 0) throw new Error("a Config without entries");
  return "config";
}

/**
 * Parses `iterations` mutations of the seed configs (1 to 4 edits each).
 * Anything but a Config or placed issues counts as a failure.
 */
export async function fuzzConfigParser(
  iterations: number,
  seed: number,
): Promise<ConfigFuzzFigures> {
  const random = new Prng(seed);
  const seeds = await configSeeds();
  let configs = 0;
  let refused = 0;
  let issues = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  let slowestMs = 0;
  for (let i = 0; i < iterations; i++) {
    let text = random.pick(seeds);
    for (let edits = random.int(1, 4); edits > 0; edits--) text = mutate(random, text);
    const env = random.pick(ENVS);
    const started = performance.now();
    let result;
    try {
      result = checkParse(text, env);
    } catch (error) {
      failures++;
      firstFailure ??= new FuzzFailure("draftConfig", seed, i, text, error).message;
      continue;
    }
    slowestMs = Math.max(slowestMs, performance.now() - started);
    if (result === "config") configs++;
    else {
      refused++;
      issues += result;
    }
  }
  return {
    iterations,
    configs,
    refused,
    issues,
    failures,
    firstFailure,
    slowestMs: Math.round(slowestMs),
    seed,
  };
}

/** What a decode path fuzz run saw. */
export interface DecodeFuzzFigures {
  readonly iterations: number;
  readonly decoded: number;
  readonly decodeErrors: number;
  readonly outcomes: Record<string, number>;
  readonly seed: number;
}

const encoder = new TextEncoder();

/** A random body: bytes, broken UTF-8, or JSON with a few bytes changed. */
function randomBody(random: Prng): Uint8Array {
  switch (random.int(0, 5)) {
    case 0:
      return random.bytes(random.int(0, 300));
    case 1:
      return new Uint8Array(0);
    case 2: {
      const json = encoder.encode(JSON.stringify(randomJson(random, 0)));
      for (let flips = random.int(0, 3); flips > 0 && json.length > 0; flips--) {
        json[random.int(0, json.length - 1)] = random.int(0, 255);
      }
      return json;
    }
    case 3: {
      const depth = random.int(1, 5_000);
      const open = random.chance(0.5) ? "[" : '{"k":';
      const close = open === "[" ? "]" : "}";
      return encoder.encode(open.repeat(depth) + "0" + close.repeat(random.int(0, depth)));
    }
    case 4: {
      // Broken UTF-8: continuation bytes, overlongs, surrogates, truncation.
      const pieces = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [
        0xe2,
        0x82,
      ]];
      return new Uint8Array([0x22, ...random.pick(pieces), 0x22]);
    }
    default:
      return encoder.encode(random.pick(["\ufeff{}", "null", "1e999", '"\\ud800"', " ", "[]"]));
  }
}

function randomJson(random: Prng, depth: number): unknown {
  const kind = depth > 3 ? random.int(0, 3) : random.int(0, 5);
  switch (kind) {
    case 0:
      return random.int(-1e6, 1e6);
    case 1:
      return String.fromCharCode(
        ...Array.from({ length: random.int(0, 8) }, () => random.int(0, 0xffff)),
      );
    case 2:
      return random.pick([true, false, null]);
    case 3:
      return random.next();
    case 4:
      return Array.from({ length: random.int(0, 4) }, () => randomJson(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from(
          { length: random.int(0, 4) },
          (_, i) => [`k${i}`, randomJson(random, depth + 1)],
        ),
      );
  }
}

/** A hook that returns a random value, throws, or returns a promise. */
function randomHook(random: Prng): (...args: unknown[]) => unknown {
  const values: unknown[] = [
    true,
    false,
    0,
    1,
    "",
    "key",
    12n,
    null,
    undefined,
    {},
    [],
    Symbol("s"),
    () => {},
    Promise.resolve("later"),
    { then: 1 },
    Number.NaN,
  ];
  const choice = random.int(0, values.length + 3);
  return () => {
    if (choice === values.length) throw new Error("hook threw");
    if (choice === values.length + 1) throw new PermanentError("permanent");
    if (choice === values.length + 2) return Promise.reject(new Error("hook rejected"));
    if (choice === values.length + 3) throw undefined;
    const value = values[choice];
    // A fresh rejected promise each time, so none is left unhandled.
    return value instanceof Promise ? Promise.resolve(value) : value;
  };
}

const DECODES: (Decode | undefined)[] = [
  undefined,
  "json",
  "text",
  "bytes",
  (bytes) => bytes.length,
  () => {
    throw new RangeError("decoder threw");
  },
];

/**
 * Random bodies through `decodeBody` (every decode) and through a task
 * runner whose worker's hooks return random values or throw.
 *
 * @throws {FuzzFailure} when decodeBody throws anything but a DecodeError,
 * or the runner rejects or gives something that is not an outcome.
 */
export async function fuzzDecodePath(iterations: number, seed: number): Promise<DecodeFuzzFigures> {
  const random = new Prng(seed);
  const store = new MemoryStore({ capacity: 1_000, ttlMs: 60_000 });
  const outcomes: Record<string, number> = Object.fromEntries(OUTCOME_KINDS.map((k) => [k, 0]));
  let decoded = 0;
  let decodeErrors = 0;
  try {
    for (let i = 0; i < iterations; i++) {
      const body = randomBody(random);
      const decode = random.pick(DECODES);
      const shown = () => `decode ${String(decode)}, body base64 ${body.toBase64().slice(0, 2000)}`;
      try {
        decodeBody(decode, body);
        decoded++;
      } catch (error) {
        if (!(error instanceof DecodeError)) {
          throw new FuzzFailure("decodeBody", seed, i, shown(), error);
        }
        decodeErrors++;
      }
      const worker: WorkerDefinition = {
        ...(decode === undefined ? {} : { decode }),
        ...(random.chance(0.5) ? { validate: randomHook(random) as () => boolean } : {}),
        ...(random.chance(0.5) ? { dedupeKey: randomHook(random) as () => string } : {}),
        handle: randomHook(random) as () => void,
      };
      const runner = new TaskRunner({
        worker,
        scope: "t/c",
        settings: { maxAttempts: 3, requeueDelayMs: 10, maxRequeueDelayMs: 100, timeoutMs: 1_000 },
        store,
        context: fakeContext,
      });
      const message: TaskMessage = {
        id: `m${i}`,
        attempts: random.int(1, 4),
        timestamp: 0,
        body,
        msgTimeoutMs: 60_000,
        touch() {},
        idScope: "t/c@127.0.0.1:4150",
      };
      let outcome;
      try {
        outcome = await runner.run(message);
      } catch (error) {
        throw new FuzzFailure("TaskRunner.run", seed, i, shown(), error);
      }
      if (!(OUTCOME_KINDS as readonly string[]).includes(outcome?.kind)) {
        throw new FuzzFailure("TaskRunner.run", seed, i, shown(), `not an outcome: ${outcome}`);
      }
      outcomes[outcome.kind]!++;
    }
  } finally {
    await store.close();
  }
  return { iterations, decoded, decodeErrors, outcomes, seed };
}
