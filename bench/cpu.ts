/**
 * CPU time of a peer, from the kernel's own accounting in /proc, so that
 * Deno, Node.js, Go and Python peers are measured alike.
 *
 * @module
 */

import { output } from "./child.ts";

/** Clock ticks per second of /proc's times; asked once (`getconf CLK_TCK`), 100 on Linux. */
let ticksPerSecond: Promise<number> | undefined;

/**
 * User + system CPU seconds used so far by process `pid` and every process
 * below it (and their waited-for children), or null when `pid` is gone.
 * Deno asks for every permission (`-A`) to read /proc of another process,
 * and this kernel has no `/proc/PID/task/TID/children`, so one `sh` reads
 * every process's `stat` and the tree is followed through their parents.
 */
export async function cpuSeconds(pid: number): Promise<number | null> {
  ticksPerSecond ??= output("getconf", ["CLK_TCK"]).then((out) => Number(out.trim()) || 100);
  const [ticks, out] = await Promise.all([
    ticksPerSecond,
    output("sh", ["-c", "cat /proc/[0-9]*/stat 2>/dev/null; true"]),
  ]);
  const total = treeTicks(out, pid);
  return total === null ? null : total / ticks;
}

/**
 * The summed utime, stime, cutime and cstime of `root` and its descendants
 * in `stat`, the text of many /proc/PID/stat files; null when `root` is not
 * among them.
 */
export function treeTicks(stat: string, root: number): number | null {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const line of stat.split("\n")) {
    // The command name, in parentheses, may hold spaces and parentheses: fields follow the last ')'.
    const close = line.lastIndexOf(")");
    if (close === -1) continue;
    const pid = Number(line.slice(0, line.indexOf(" ")));
    const fields = line.slice(close + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    parents.set(pid, Number(fields[1]));
    ticks.set(pid, fields.slice(11, 15).reduce((sum, field) => sum + Number(field), 0));
  }
  if (!ticks.has(root)) return null;
  let total = 0;
  for (const [pid, own] of ticks) {
    for (let up: number | undefined = pid; up !== undefined && up > 1; up = parents.get(up)) {
      if (up === root) {
        total += own;
        break;
      }
    }
  }
  return total;
}
