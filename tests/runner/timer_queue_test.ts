import assert from "node:assert/strict";
import { type Timed, TimerQueue } from "../../src/runner/timer_queue.ts";
import { countTimers } from "../helpers/timer_spy.ts";

/** Deno 2.9 runs tests without the sanitizers unless asked: a timer left armed must fail. */
function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
}

function item(name: string, fired: string[]): Timed {
  return { due: 0, slot: -1, fire: () => void fired.push(name) };
}

test("items fire in order of due time, whatever the order they were added in", async () => {
  const fired: string[] = [];
  const timers = new TimerQueue({ now: () => performance.now() });
  const t0 = performance.now();
  const dues = [30, 5, 20, 10, 25, 15, 1];
  for (const ms of dues) timers.add(item(String(ms), fired), t0 + ms);
  const all = Promise.withResolvers<void>();
  timers.add({ due: 0, slot: -1, fire: () => all.resolve() }, t0 + 40);
  await all.promise;
  assert.deepEqual(fired, [...dues].sort((a, b) => a - b).map(String));
  assert.equal(timers.size, 0);
});

test("a removed item never fires, and an emptied queue leaves no timer armed", async () => {
  const fired: string[] = [];
  const timers = new TimerQueue({ now: () => performance.now() });
  const t0 = performance.now();
  const items = Array.from({ length: 20 }, (_, i) => item(String(i), fired));
  items.forEach((it, i) => timers.add(it, t0 + 5 + i));
  for (let i = 0; i < items.length; i += 2) timers.remove(items[i]!);
  timers.remove(items[0]!); // twice: a no-op
  const last = Promise.withResolvers<void>();
  timers.add({ due: 0, slot: -1, fire: () => last.resolve() }, t0 + 40);
  await last.promise;
  assert.deepEqual(fired, items.map((_, i) => String(i)).filter((_, i) => i % 2 === 1));
  // The sanitizer fails the test if removing every item left the timer armed.
  items.forEach((it, i) => timers.add(it, t0 + 60_000 + i));
  for (const it of items) timers.remove(it);
  assert.equal(timers.size, 0);
});

test("many due times share one system timer, moved only for an earlier one", () => {
  const timers = new TimerQueue({ now: () => 0 });
  const items: Timed[] = [];
  const armed = countTimers(() => {
    for (let i = 0; i < 1_000; i++) {
      const it = item(String(i), []);
      items.push(it);
      timers.add(it, 1_000 + i);
    }
  });
  for (const it of items) timers.remove(it);
  assert.equal(armed, 1);
});
