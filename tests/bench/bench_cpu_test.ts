/** The bench's reading of CPU time from /proc (bench/cpu.ts). */

import assert from "node:assert/strict";
import { cpuSeconds, treeTicks } from "../../bench/cpu.ts";

/** A /proc/PID/stat line: utime, stime, cutime and cstime are fields 14 to 17. */
function stat(pid: number, comm: string, ppid: number, times: [number, number, number, number]) {
  const fields = ["S", ppid, pid, pid, 0, -1, 4194560, 100, 0, 0, 0, ...times, 20, 0, 1, 0, 500];
  return `${pid} (${comm}) ${fields.join(" ")}`;
}

Deno.test("treeTicks sums a process and its descendants, not its parent or siblings", () => {
  const text = [
    stat(1, "init", 0, [1000, 1000, 0, 0]),
    stat(10, "deno", 1, [300, 20, 0, 0]),
    // Spaces and parentheses in a command name must not shift the fields.
    stat(11, "a) b (c", 10, [5, 1, 7, 3]),
    stat(12, "python3", 11, [40, 2, 0, 0]),
    stat(13, "sibling", 1, [900, 900, 0, 0]),
    "",
  ].join("\n");
  assert.equal(treeTicks(text, 10), 300 + 20 + 5 + 1 + 7 + 3 + 40 + 2);
  assert.equal(treeTicks(text, 11), 5 + 1 + 7 + 3 + 40 + 2);
  assert.equal(treeTicks(text, 99), null);
});

Deno.test("cpuSeconds reads a live child's CPU time, and null once it is gone", async () => {
  // Spins until killed.
  const child = new Deno.Command("sh", { args: ["-c", "while :; do :; done"], stdout: "null" })
    .spawn();
  try {
    let seconds: number | null = 0;
    const deadline = performance.now() + 10_000;
    while ((seconds = await cpuSeconds(child.pid)) !== null && seconds < 0.05) {
      assert.ok(performance.now() < deadline, `child CPU stayed at ${seconds} s`);
    }
    assert.ok(seconds !== null && seconds >= 0.05, `got ${seconds}`);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  assert.equal(await cpuSeconds(child.pid), null);
});
