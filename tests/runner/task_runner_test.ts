import assert from "node:assert/strict";
import { MemoryStore } from "../../src/dedupe/memory_store.ts";
import type { Claim, DedupeStore } from "../../src/dedupe/store.ts";
import { PermanentError } from "../../src/worker/permanent_error.ts";
import { type Outcome, OUTCOME_KINDS } from "../../src/runner/outcome.ts";
import {
  type TaskMessage,
  TaskRunner,
  type TaskRunnerOptions,
  type TaskSettings,
} from "../../src/runner/task_runner.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { fakeContext } from "../helpers/fakes.ts";
import { countTimers } from "../helpers/timer_spy.ts";

const SCOPE = "pageviews/counter";
const encoder = new TextEncoder();

const SETTINGS: TaskSettings = {
  maxAttempts: 3,
  requeueDelayMs: 100,
  maxRequeueDelayMs: 10_000,
  timeoutMs: 5_000,
};

interface Setup {
  runner: TaskRunner;
  store: MemoryStore;
  /** The `ctx.signal` of each handler call, in order. */
  signals: AbortSignal[];
}

function setup(
  worker: WorkerDefinition,
  options: Partial<Omit<TaskRunnerOptions, "settings">> & { settings?: Partial<TaskSettings> } = {},
): Setup {
  const store = new MemoryStore({ capacity: 1_000, ttlMs: 60_000 });
  const signals: AbortSignal[] = [];
  const runner = new TaskRunner({
    worker,
    scope: SCOPE,
    store,
    context: (message, signal) => {
      signals.push(signal);
      return fakeContext(message, signal);
    },
    random: () => 0.5, // jitter factor 1: delays are exact
    ...options,
    settings: { ...SETTINGS, ...options.settings },
  });
  return { runner, store, signals };
}

interface FakeMessage extends TaskMessage {
  readonly touches: number;
}

function message(
  body: unknown = { clicks: 1 },
  fields: { id?: string; attempts?: number; msgTimeoutMs?: number; onTouch?: () => void } = {},
): FakeMessage {
  let touches = 0;
  return {
    id: fields.id ?? "0a1b2c3d4e5f6789",
    attempts: fields.attempts ?? 1,
    timestamp: 1_700_000_000_000,
    body: body instanceof Uint8Array ? body : encoder.encode(JSON.stringify(body)),
    msgTimeoutMs: fields.msgTimeoutMs ?? 60_000,
    idScope: SCOPE,
    touch() {
      touches++;
      fields.onTouch?.();
    },
    get touches() {
      return touches;
    },
  };
}

function claimStatus(store: DedupeStore, key: string): Claim["status"] {
  const claim = store.claim(SCOPE, key, 1_000) as Claim;
  if (claim.status === "claimed") store.release(SCOPE, key, claim.token);
  return claim.status;
}

function assertOutcome(outcome: Outcome, expected: Record<string, unknown>): void {
  const { durationMs, ...rest } = outcome as Outcome & { durationMs?: number | null };
  if (typeof durationMs === "number") assert.ok(durationMs >= 0);
  const { durationMs: expectedDuration, ...expectedRest } = expected;
  assert.deepEqual(rest, expectedRest);
  if (expectedDuration === null) assert.equal(durationMs, null);
}

/** Deno 2.9 runs tests without the sanitizers unless asked: a timer left running must fail. */
function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

function never(): Promise<void> {
  return new Promise(() => {});
}

test("OUTCOME_KINDS lists every kind", async () => {
  // Type-checking fails here if Outcome gains a kind that OUTCOME_KINDS lacks.
  const _complete: Exclude<Outcome["kind"], (typeof OUTCOME_KINDS)[number]> extends never ? true
    : false = true;
  assert.equal(new Set(OUTCOME_KINDS).size, 6);
  // And every kind listed is one the runner gives: each of its outcomes, once.
  const { runner, store } = setup({
    handle(body: { fate: string }) {
      if (body.fate === "retry") throw new Error("try again");
      if (body.fate === "dead") throw new PermanentError("never");
    },
  });
  const run = (fate: string, id: string, stop?: AbortSignal) =>
    runner.run(message({ fate }, { id }), stop);
  const given = [
    await run("finish", "0000000000000001"),
    await run("finish", "0000000000000001"),
    await run("retry", "0000000000000002"),
    await run("dead", "0000000000000003"),
    await run("finish", "0000000000000004", AbortSignal.abort()),
  ].map((outcome) => outcome.kind);
  assert.equal(store.claim(SCOPE, "0000000000000005", 1_000).status, "claimed");
  given.push((await run("finish", "0000000000000005")).kind);
  assert.deepEqual(given, ["finish", "duplicate", "retry", "dead", "interrupted", "busy"]);
  assert.deepEqual([...given].sort(), [...OUTCOME_KINDS].sort());
});

test("a handler that returns finishes the message and marks the key done", async () => {
  let seen: unknown;
  const { runner, store } = setup({ handle: (body) => void (seen = body) });
  const outcome = await runner.run(message({ clicks: 3 }));
  assert.equal(outcome.kind, "finish");
  assert.ok(outcome.kind === "finish" && outcome.durationMs >= 0);
  assert.deepEqual(seen, { clicks: 3 });
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "done");
});

test("an async handler that resolves finishes, and so does one returning a non-promise value", async () => {
  const asynchronous = setup({ handle: async () => await Promise.resolve() });
  assertOutcome(await asynchronous.runner.run(message()), { kind: "finish" });
  const value = setup({ handle: () => 42 as unknown as void });
  assertOutcome(await value.runner.run(message()), { kind: "finish" });
});

test("a synchronous throw, a rejection and a non-Error throw are retried with backoff", async () => {
  const sync = setup({
    handle: () => {
      throw new Error("boom");
    },
  });
  assertOutcome(await sync.runner.run(message()), { kind: "retry", delayMs: 100, error: "boom" });

  const rejection = setup({ handle: () => Promise.reject(new TypeError("x is undefined")) });
  assertOutcome(await rejection.runner.run(message(undefined, { attempts: 2 })), {
    kind: "retry",
    delayMs: 200,
    error: "TypeError: x is undefined",
  });

  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const thrown: unknown[] = [
    "just a string",
    42,
    { code: "E42" },
    null,
    undefined,
    cyclic,
    Object.create(null),
    new Error(""),
    new RangeError(""),
  ];
  const errors: string[] = [];
  for (const value of thrown) {
    const { runner } = setup({
      handle: () => {
        throw value;
      },
    });
    const outcome = await runner.run(message());
    assert.equal(outcome.kind, "retry");
    if (outcome.kind === "retry") errors.push(outcome.error);
  }
  assert.deepEqual(errors, [
    "just a string",
    "42",
    '{"code":"E42"}',
    "null",
    "undefined",
    "[object Object]",
    "{}",
    "Error",
    "RangeError",
  ]);
});

test("a failure releases the claim so that the retry runs the handler again", async () => {
  let calls = 0;
  const { runner, store } = setup({
    handle: () => {
      if (++calls === 1) throw new Error("flaky");
    },
  });
  assert.equal((await runner.run(message())).kind, "retry");
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
  assert.equal((await runner.run(message(undefined, { attempts: 2 }))).kind, "finish");
  assert.equal(calls, 2);
  assert.equal((await runner.run(message(undefined, { attempts: 3 }))).kind, "duplicate");
  assert.equal(calls, 2);
});

test("a failure at max attempts is dead", async () => {
  const { runner, store } = setup({ handle: () => Promise.reject(new Error("still down")) });
  assertOutcome(await runner.run(message(undefined, { attempts: 3 })), {
    kind: "dead",
    reason: "max_attempts",
    error: "still down",
  });
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
});

test("PermanentError, thrown or rejected, is dead at once", async () => {
  const sync = setup({
    handle: () => {
      throw new PermanentError("event has no user");
    },
  });
  assertOutcome(await sync.runner.run(message()), {
    kind: "dead",
    reason: "permanent",
    error: "event has no user",
  });
  assert.equal(claimStatus(sync.store, "0a1b2c3d4e5f6789"), "claimed");

  const rejected = setup({ handle: () => Promise.reject(new PermanentError("bad event")) });
  assertOutcome(await rejected.runner.run(message()), {
    kind: "dead",
    reason: "permanent",
    error: "bad event",
  });
});

test("a long error message is cut to 1000 characters", async () => {
  const { runner } = setup({
    handle: () => {
      throw new Error("x".repeat(5_000));
    },
  });
  const outcome = await runner.run(message());
  assert.ok(outcome.kind === "retry");
  assert.equal(outcome.error.length, 1_000);
  assert.ok(outcome.error.endsWith("…"));
});

test("a handler past its deadline is aborted and retried; its late rejection is handled", async () => {
  const rejected = Promise.withResolvers<void>();
  const { runner, signals, store } = setup(
    {
      handle: (_body, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => {
            reject(new Error("aborted late"));
            queueMicrotask(rejected.resolve);
          });
        }),
    },
    { settings: { timeoutMs: 50 } },
  );
  const msg = message();
  const outcome = await runner.run(msg);
  assertOutcome(outcome, { kind: "retry", delayMs: 100, error: "handler timed out after 50ms" });
  assert.ok(outcome.kind === "retry" && outcome.durationMs !== null && outcome.durationMs >= 49);
  const signal = signals[0]!;
  assert.ok(signal.aborted);
  assert.ok(signal.reason instanceof DOMException);
  assert.equal(signal.reason.name, "TimeoutError");
  assert.equal(signal.reason.message, "handler timed out after 50ms");
  assert.equal(msg.touches, 0, "no touch: the deadline comes before nsqd's timeout");
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
  await rejected.promise;
});

test("a handler that never settles times out, dead at max attempts", async () => {
  const { runner, signals } = setup({ handle: never }, { settings: { timeoutMs: 50 } });
  assertOutcome(await runner.run(message(undefined, { attempts: 3 })), {
    kind: "dead",
    reason: "max_attempts",
    error: "handler timed out after 50ms",
  });
  assert.ok(signals[0]!.aborted);
});

test("a handler that outlives half of nsqd's timeout gets touched, and the claim renewed", async () => {
  const twoTouches = Promise.withResolvers<void>();
  const renewals: number[] = [];
  const store = new MemoryStore({ capacity: 10, ttlMs: 60_000 });
  const spy: DedupeStore = {
    claim: (scope, key, leaseMs) => store.claim(scope, key, leaseMs),
    done: (scope, key, token) => store.done(scope, key, token),
    release: (scope, key, token) => store.release(scope, key, token),
    renew: (scope, key, token, leaseMs) => {
      renewals.push(leaseMs);
      store.renew(scope, key, token, leaseMs);
    },
    close: () => store.close(),
  };
  const { runner } = setup({ handle: () => twoTouches.promise }, { store: spy });
  const msg = message(undefined, {
    msgTimeoutMs: 40,
    onTouch: () => {
      if (msg.touches === 2) twoTouches.resolve();
    },
  });
  const outcome = await runner.run(msg);
  assert.equal(outcome.kind, "finish");
  assert.equal(msg.touches, 2);
  // Renewed at each touch, for one touch period plus the margin.
  assert.deepEqual(renewals, [10_020, 10_020]);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "done");
});

test("touches go on until the deadline, which still holds", async () => {
  const { runner } = setup({ handle: never }, { settings: { timeoutMs: 100 } });
  const msg = message(undefined, { msgTimeoutMs: 40 });
  const outcome = await runner.run(msg);
  assertOutcome(outcome, { kind: "retry", delayMs: 100, error: "handler timed out after 100ms" });
  // At 20, 40, 60 and 80ms; at 100ms the deadline.
  assert.equal(msg.touches, 4);
});

test("a touch that throws (connection gone) does not break the run", async () => {
  const done = Promise.withResolvers<void>();
  const { runner } = setup({ handle: () => done.promise });
  const msg = message(undefined, {
    msgTimeoutMs: 20,
    onTouch: () => {
      if (msg.touches === 2) done.resolve();
      throw new Error("connection closed");
    },
  });
  assert.equal((await runner.run(msg)).kind, "finish");
});

test("stop aborts a running handler: interrupted, claim released", async () => {
  const started = Promise.withResolvers<void>();
  const { runner, signals, store } = setup({
    handle: () => {
      started.resolve();
      return never();
    },
  });
  const stop = new AbortController();
  const running = runner.run(message(), stop.signal);
  await started.promise;
  const reason = new Error("forced shutdown");
  stop.abort(reason);
  assertOutcome(await running, { kind: "interrupted" });
  assert.equal(signals[0]!.reason, reason);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
});

test("stop already aborted: interrupted without running the handler", async () => {
  let calls = 0;
  const { runner, store } = setup({ handle: () => void calls++ });
  const stop = new AbortController();
  stop.abort();
  assert.deepEqual(await runner.run(message(), stop.signal), {
    kind: "interrupted",
    durationMs: 0,
  });
  assert.equal(calls, 0);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
});

test("a stop signal that never fires leaves no listener behind, whatever the outcome", async () => {
  // One signal serves every message of an entry: a listener left per message would leak.
  const stop = new AbortController();
  const listeners = new Set<unknown>();
  const signal = stop.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (type: string, listener: EventListenerOrEventListenerObject) => {
    listeners.add(listener);
    add(type, listener);
  };
  signal.removeEventListener = (type: string, listener: EventListenerOrEventListenerObject) => {
    listeners.delete(listener);
    remove(type, listener);
  };
  let calls = 0;
  const { runner } = setup({
    handle: () => ++calls === 2 ? Promise.reject(new Error("boom")) : Promise.resolve(),
  }, { settings: { timeoutMs: 50 } });
  assert.equal((await runner.run(message(undefined, { id: "a" }), signal)).kind, "finish");
  assert.equal((await runner.run(message(undefined, { id: "b" }), signal)).kind, "retry");
  const slow = setup({ handle: never }, { settings: { timeoutMs: 20 } });
  assert.equal((await slow.runner.run(message(undefined, { id: "c" }), signal)).kind, "retry");
  assert.equal(calls, 2);
  assert.equal(listeners.size, 0, `${listeners.size} abort listeners left on the stop signal`);
});

test("concurrent handlers share one abort listener on the stop signal, and it aborts them all", async () => {
  // A signal's listener list is scanned on every add and remove: one listener
  // per running handler made each message cost O(max_in_flight).
  const stop = new AbortController();
  const signal = stop.signal;
  const listeners = new Set<unknown>();
  let most = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (type: string, listener: EventListenerOrEventListenerObject) => {
    listeners.add(listener);
    most = Math.max(most, listeners.size);
    add(type, listener);
  };
  signal.removeEventListener = (type: string, listener: EventListenerOrEventListenerObject) => {
    listeners.delete(listener);
    remove(type, listener);
  };
  const { runner } = setup({ handle: never });
  const running = ["a", "b", "c"].map((id) => runner.run(message(undefined, { id }), signal));
  assert.equal(most, 1, `${most} abort listeners on the stop signal at once`);
  stop.abort(new Error("forced shutdown"));
  for (const outcome of await Promise.all(running)) assertOutcome(outcome, { kind: "interrupted" });
  assert.equal(listeners.size, 0, `${listeners.size} abort listeners left on the stop signal`);
});

test("a synchronous handler with the memory store makes no claim; duplicates and busy keys are as with one", async () => {
  const { runner, store } = setup({ handle: () => {} });
  const claims: string[] = [];
  const claim = store.claim.bind(store);
  store.claim = (scope: string, key: string, leaseMs: number) => {
    claims.push(key);
    return claim(scope, key, leaseMs);
  };
  assert.equal((await runner.run(message(undefined, { id: "a" }))).kind, "finish");
  assert.deepEqual(claims, [], "no claim for a handler that returned without a promise");
  assert.deepEqual(await runner.run(message(undefined, { id: "a" })), { kind: "duplicate" });
  assert.equal(claim(SCOPE, "b", 60_000).status, "claimed");
  assert.equal((await runner.run(message(undefined, { id: "b" }))).kind, "busy");
  assert.equal(claimStatus(store, "a"), "done");
});

test("an asynchronous handler with the memory store holds a claim while it runs", async () => {
  const gate = Promise.withResolvers<void>();
  let calls = 0;
  const { runner, store } = setup({
    handle: () => {
      calls++;
      return gate.promise;
    },
  });
  const first = runner.run(message(undefined, { id: "a" }));
  assert.equal((await runner.run(message(undefined, { id: "a" }))).kind, "busy");
  gate.resolve();
  assert.equal((await first).kind, "finish");
  assert.equal(calls, 1);
  assert.equal(claimStatus(store, "a"), "done");
});

test("a done key is a duplicate; the handler does not run", async () => {
  let calls = 0;
  const { runner } = setup({ handle: () => void calls++ });
  assert.equal((await runner.run(message())).kind, "finish");
  assert.deepEqual(await runner.run(message()), { kind: "duplicate" });
  assert.equal(calls, 1);
});

test("a custom dedupe key catches the same event under two message ids", async () => {
  let calls = 0;
  const { runner, store } = setup({
    dedupeKey: (body: { event_id: number }) => body.event_id,
    handle: () => void calls++,
  });
  // Scoped to the entry, whichever nsqd delivered each copy.
  const first = { ...message({ event_id: 7 }, { id: "A" }), idScope: `${SCOPE}@a:4150` };
  const second = { ...message({ event_id: 7 }, { id: "B" }), idScope: `${SCOPE}@b:4150` };
  assert.equal((await runner.run(first)).kind, "finish");
  assert.equal((await runner.run(second)).kind, "duplicate");
  assert.equal(calls, 1);
  assert.equal(claimStatus(store, "7"), "done", "a number key is String()'d");
});

test("an undefined dedupe key falls back to the message id", async () => {
  const undef = setup({ dedupeKey: () => undefined, handle: () => {} });
  assert.equal((await undef.runner.run(message(undefined, { id: "M2" }))).kind, "finish");
  assert.equal(claimStatus(undef.store, "M2"), "done");
});

test("a key claimed by a running handler is busy: short requeue, handler not run", async () => {
  const release = Promise.withResolvers<void>();
  let calls = 0;
  const { runner } = setup({
    dedupeKey: () => "event-1",
    handle: () => {
      calls++;
      return release.promise;
    },
  });
  const first = runner.run(message(undefined, { id: "A" }));
  assert.deepEqual(await runner.run(message(undefined, { id: "B" })), {
    kind: "busy",
    delayMs: 1_000,
  });
  release.resolve();
  assert.equal((await first).kind, "finish");
  assert.equal((await runner.run(message(undefined, { id: "B" }))).kind, "duplicate");
  assert.equal(calls, 1);
});

test("the busy delay is requeueDelay clamped to 1-5s, jittered, within maxRequeueDelay", async () => {
  async function busyDelay(settings: Partial<TaskSettings>, random = () => 0.5) {
    const { runner, store } = setup({ handle: () => {} }, { settings, random });
    store.claim(SCOPE, "0a1b2c3d4e5f6789", 60_000);
    const outcome = await runner.run(message());
    assert.ok(outcome.kind === "busy");
    return outcome.delayMs;
  }
  assert.equal(await busyDelay({ requeueDelayMs: 100 }), 1_000);
  assert.equal(await busyDelay({ requeueDelayMs: 3_000 }), 3_000);
  assert.equal(await busyDelay({ requeueDelayMs: 60_000, maxRequeueDelayMs: 900_000 }), 5_000);
  assert.equal(await busyDelay({ requeueDelayMs: 100, maxRequeueDelayMs: 500 }), 500);
  assert.equal(await busyDelay({ requeueDelayMs: 2_000 }, () => 0), 1_500);
  assert.equal(await busyDelay({ requeueDelayMs: 2_000 }, () => 0.999), 2_499);
});

test("an undecodable body is dead with reason decode; nothing claimed", async () => {
  let calls = 0;
  const { runner, store } = setup({ handle: () => void calls++ });
  assertOutcome(await runner.run(message(encoder.encode("not json"))), {
    kind: "dead",
    reason: "decode",
    error: `body is not JSON: Unexpected token 'o', "not json" is not valid JSON`,
    durationMs: null,
  });
  assertOutcome(await runner.run(message(new Uint8Array([0xff]))), {
    kind: "dead",
    reason: "decode",
    error: "body is not valid UTF-8",
    durationMs: null,
  });
  assertOutcome(await runner.run(message(new Uint8Array())), {
    kind: "dead",
    reason: "decode",
    error: "body is empty (expected JSON)",
    durationMs: null,
  });
  assert.equal(calls, 0);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
});

test("decode 'text', 'bytes' and functions reach the handler", async () => {
  const seen: unknown[] = [];
  const handle = (body: unknown) => void seen.push(body);
  const raw = encoder.encode("hello");
  await setup({ decode: "text", handle }).runner.run(message(raw));
  await setup({ decode: "bytes", handle }).runner.run(message(raw));
  await setup({ decode: (bytes) => bytes.length, handle }).runner.run(message(raw));
  assert.deepEqual(seen, ["hello", raw, 5]);
});

test("validate: false, a throw or a Promise is dead with reason validate", async () => {
  let calls = 0;
  const handle = () => void calls++;
  const cases: [NonNullable<WorkerDefinition["validate"]>, string][] = [
    [() => false, "validate returned false"],
    [() => undefined as unknown as boolean, "validate returned undefined"],
    [
      (body: { clicks: { n: number } }) => body.clicks.n > 0,
      "validate threw: TypeError: Cannot read properties of undefined (reading 'n')",
    ],
    [
      () => Promise.reject(new Error("async")) as unknown as boolean,
      "validate returned a Promise; it must be synchronous",
    ],
  ];
  for (const [validate, error] of cases) {
    const { runner } = setup({ validate, handle });
    assertOutcome(await runner.run(message({})), {
      kind: "dead",
      reason: "validate",
      error,
      durationMs: null,
    });
  }
  assert.equal(calls, 0);
  const passing = setup({ validate: (body: { clicks: number }) => body.clicks === 1, handle });
  assert.equal((await passing.runner.run(message({ clicks: 1 }))).kind, "finish");
  assert.equal(calls, 1);
});

test("dedupeKey: a throw or a key that is not a string or number is dead with reason dedupe_key", async () => {
  const cases: [NonNullable<WorkerDefinition["dedupeKey"]>, string][] = [
    [
      () => {
        throw new Error("no id");
      },
      "dedupeKey threw: no id",
    ],
    [
      () => ({ id: 1 }) as unknown as string,
      "dedupeKey must return a string, a number, null or undefined, got object",
    ],
    [
      () => Promise.resolve("k") as unknown as string,
      "dedupeKey must return a string, a number, null or undefined, got a Promise",
    ],
  ];
  for (const [dedupeKey, error] of cases) {
    const { runner } = setup({ dedupeKey, handle: () => {} });
    assertOutcome(await runner.run(message()), {
      kind: "dead",
      reason: "dedupe_key",
      error,
      durationMs: null,
    });
  }
});

test("a failing dedupe store is retried with backoff, the handler not run", async () => {
  let calls = 0;
  const failing: DedupeStore = {
    claim: () => {
      throw new Error("ECONNREFUSED");
    },
    done: () => {},
    release: () => {},
    renew: () => {},
    close: () => Promise.resolve(),
  };
  const { runner } = setup({ handle: () => void calls++ }, { store: failing });
  assertOutcome(await runner.run(message(undefined, { attempts: 3 })), {
    kind: "retry",
    delayMs: 400,
    error: "dedupe store failed: ECONNREFUSED",
    durationMs: null,
    storeFailure: { error: "ECONNREFUSED", bypassed: false },
  });
  const rejecting: DedupeStore = { ...failing, claim: () => Promise.reject(new Error("timeout")) };
  const other = setup({ handle: () => void calls++ }, { store: rejecting });
  assertOutcome(await other.runner.run(message()), {
    kind: "retry",
    delayMs: 100,
    error: "dedupe store failed: timeout",
    durationMs: null,
    storeFailure: { error: "timeout", bypassed: false },
  });
  assert.equal(calls, 0);
});

test("an asynchronous store works, and its done/release failures do not change the outcome", async () => {
  const memory = new MemoryStore({ capacity: 10, ttlMs: 60_000 });
  const asyncStore: DedupeStore = {
    claim: (scope, key, leaseMs) => Promise.resolve(memory.claim(scope, key, leaseMs)),
    done: () => Promise.reject(new Error("done lost")),
    release: () => Promise.reject(new Error("release lost")),
    renew: () => Promise.reject(new Error("renew lost")),
    close: () => memory.close(),
  };
  const { runner } = setup({ handle: () => {} }, { store: asyncStore });
  assert.equal((await runner.run(message(undefined, { id: "A" }))).kind, "finish");
  const failing = setup({ handle: () => Promise.reject(new Error("x")) }, { store: asyncStore });
  assert.equal((await failing.runner.run(message(undefined, { id: "B" }))).kind, "retry");
});

test("a context builder that throws counts as a handler failure and releases the claim", async () => {
  const { runner, store } = setup({ handle: () => {} }, {
    context: () => {
      throw new Error("no publisher");
    },
  });
  assertOutcome(await runner.run(message()), {
    kind: "retry",
    delayMs: 100,
    error: "no publisher",
  });
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed");
});

test("a handler that settles after the deadline does not change the outcome", async () => {
  const late = Promise.withResolvers<void>();
  const { runner, signals } = setup(
    {
      handle: (_body, ctx) => {
        ctx.signal.addEventListener("abort", () => setTimeout(late.resolve, 10));
        return late.promise;
      },
    },
    { settings: { timeoutMs: 30 } },
  );
  assert.equal((await runner.run(message())).kind, "retry");
  assert.ok(signals[0]!.aborted);
  await late.promise;
});

test("settings out of bounds are refused", () => {
  const handle = () => {};
  assert.throws(
    () => setup({ handle }, { settings: { maxAttempts: 0 } }),
    new RangeError(
      "Cannot create a task runner as 'settings.maxAttempts' must be an integer from 1 to 1000: current value is 0",
    ),
  );
  assert.throws(() => setup({ handle }, { settings: { timeoutMs: 0 } }), RangeError);
  assert.throws(() => setup({ handle }, { settings: { timeoutMs: 2 ** 31 } }), RangeError);
  assert.throws(() => setup({ handle }, { settings: { requeueDelayMs: -1 } }), RangeError);
  assert.throws(
    () => setup({ handle }, { settings: { maxRequeueDelayMs: Number.NaN } }),
    RangeError,
  );
  // The bounds the config declares, whatever reaches the runner.
  assert.throws(() => setup({ handle }, { settings: { maxAttempts: 1001 } }), RangeError);
  assert.throws(() => setup({ handle }, { settings: { maxAttempts: 2.5 } }), RangeError);
  assert.throws(
    () => setup({ handle }, { settings: { maxRequeueDelayMs: 3_600_001 } }),
    RangeError,
  );
  setup({ handle }, { settings: { maxAttempts: 1000, maxRequeueDelayMs: 3_600_000 } });
});

test("the same message id from two nsqd (two id scopes) is two messages", async () => {
  let calls = 0;
  const { runner } = setup({ handle: () => void calls++ });
  assert.equal((await runner.run({ ...message(), idScope: `${SCOPE}@a:4150` })).kind, "finish");
  assert.equal((await runner.run({ ...message(), idScope: `${SCOPE}@b:4150` })).kind, "finish");
  assert.deepEqual(await runner.run({ ...message(), idScope: `${SCOPE}@a:4150` }), {
    kind: "duplicate",
  });
  assert.equal(calls, 2);
});

test("a dedupeKey returning null: no dedupe, the handler runs each time and nothing is stored", async () => {
  let calls = 0;
  const claims: string[] = [];
  const memory = new MemoryStore({ capacity: 10, ttlMs: 60_000 });
  const spy: DedupeStore = {
    claim: (scope, key, leaseMs) => {
      claims.push(key);
      return memory.claim(scope, key, leaseMs);
    },
    done: (scope, key, token) => memory.done(scope, key, token),
    release: (scope, key, token) => memory.release(scope, key, token),
    renew: (scope, key, token, leaseMs) => memory.renew(scope, key, token, leaseMs),
    close: () => memory.close(),
  };
  const { runner } = setup({ dedupeKey: () => null, handle: () => void calls++ }, { store: spy });
  assert.equal((await runner.run(message())).kind, "finish");
  assert.equal((await runner.run(message())).kind, "finish");
  assert.equal(calls, 2);
  assert.deepEqual(claims, []);
});

test("delivered beyond max_attempts: dead without running the handler, unless a duplicate", async () => {
  let calls = 0;
  const { runner, store } = setup({ handle: () => void calls++ });
  assertOutcome(await runner.run(message(undefined, { attempts: 4 })), {
    kind: "dead",
    reason: "max_attempts",
    error: "attempt 4 is beyond max_attempts 3: the handler is not run again",
    durationMs: null,
  });
  assert.equal(calls, 0);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "claimed", "the claim was released");
  assert.equal((await runner.run(message(undefined, { id: "other", attempts: 3 }))).kind, "finish");
  assert.deepEqual(await runner.run(message(undefined, { id: "other", attempts: 4 })), {
    kind: "duplicate",
  });
  assert.equal(calls, 1);
  const noDedupe = setup({ dedupeKey: () => null, handle: () => void calls++ });
  assert.equal((await noDedupe.runner.run(message(undefined, { attempts: 4 }))).kind, "dead");
  assert.equal(calls, 1);
});

test("delivered beyond max_attempts with a store that claims, or a batch worker: dead unrun, claim released", async () => {
  // A store answering later (sqlite, redis): claimed, never checked.
  const memory = new MemoryStore({ capacity: 10, ttlMs: 60_000 });
  const calls: string[] = [];
  const claiming: DedupeStore = {
    claim: (scope, key, leaseMs) => {
      calls.push(`claim ${key}`);
      return Promise.resolve(memory.claim(scope, key, leaseMs));
    },
    done: (scope, key, token) => {
      calls.push(`done ${key}`);
      return memory.done(scope, key, token);
    },
    release: (scope, key, token) => {
      calls.push(`release ${key}`);
      return memory.release(scope, key, token);
    },
    renew: (scope, key, token, leaseMs) => memory.renew(scope, key, token, leaseMs),
    close: () => memory.close(),
  };
  let runs = 0;
  const beyond = {
    kind: "dead",
    reason: "max_attempts",
    error: "attempt 4 is beyond max_attempts 3: the handler is not run again",
    durationMs: null,
  };
  const { runner } = setup({ handle: () => void runs++ }, { store: claiming });
  assertOutcome(await runner.run(message(undefined, { attempts: 4 })), beyond);
  assert.equal(runs, 0);
  assert.deepEqual(calls, ["claim 0a1b2c3d4e5f6789", "release 0a1b2c3d4e5f6789"]);

  // A batch worker claims each message as it joins a batch, the memory store too.
  let joined = 0;
  const batch = setup({ handleBatch: () => {} }, {
    join: () => {
      joined++;
      return Promise.resolve({ kind: "finish", durationMs: 0 });
    },
  });
  assertOutcome(await batch.runner.run(message(undefined, { attempts: 4 })), beyond);
  assert.equal(joined, 0);
  assert.equal(claimStatus(batch.store, "0a1b2c3d4e5f6789"), "claimed", "the claim was released");
});

test("a synchronous handler with the memory store completes in the same turn, without a promise", () => {
  let runs = 0;
  const { runner, store } = setup({ handle: () => void runs++ });
  const outcome = runner.run(message());
  assert.ok(!(outcome instanceof Promise), "run() gave a promise for a synchronous handler");
  assert.equal(outcome.kind, "finish");
  assert.equal(runs, 1);
  assert.equal(claimStatus(store, "0a1b2c3d4e5f6789"), "done");
  assert.deepEqual(runner.run(message()), { kind: "duplicate" });
});

test("the touches and deadlines of every running handler share one system timer", async () => {
  const { runner } = setup({ handle: never }, { settings: { timeoutMs: 60 } });
  const running: (Outcome | Promise<Outcome>)[] = [];
  const armed = countTimers(() => {
    for (let i = 0; i < 50; i++) {
      running.push(runner.run(message(undefined, { id: `m${i}`, msgTimeoutMs: 40 })));
    }
  });
  assert.equal(armed, 1, `${armed} timers armed for 50 running handlers`);
  for (const outcome of await Promise.all(running)) {
    assertOutcome(outcome, { kind: "retry", delayMs: 100, error: "handler timed out after 60ms" });
  }
});
