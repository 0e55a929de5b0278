/**
 * Configs and readings for the tests of entries with `processes`: entries
 * of the fixture worker `child_faults`, which prints `handled <msg id>
 * <attempts> <body>` to stderr for each message it handles (the daemon logs
 * it as `child stderr`, with the child's pid).
 *
 * @module
 */

import type { CliProcess } from "./daemon_process.ts";

/** One entry of `child_faults` on channel `work`, with more keys of its own. */
export function childEntry(
  topic: string,
  settings: Record<string, unknown> = {},
): Record<string, unknown> {
  return { topic, channel: "work", worker: "child_faults", ...settings };
}

/** A config on one nsqd with an HTTP listener on a free port. */
export function daemonConfig(
  nsqd: string,
  entries: readonly Record<string, unknown>[],
  more: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    nsq: { nsqd_tcp_addresses: [nsqd] },
    http: { listen: "127.0.0.1:0" },
    log: { level: "info" },
    workers: entries,
    ...more,
  };
}

/** A line of the daemon's output that is a JSON record satisfying `predicate`. */
export const isJson =
  (predicate: (record: Record<string, unknown>) => boolean) => (line: string): boolean => {
    try {
      return predicate(JSON.parse(line));
    } catch {
      return false;
    }
  };

/** One message `child_faults` handled. */
export interface HandledRecord {
  /** The child that handled it. */
  readonly pid: number;
  readonly topic: string;
  readonly id: string;
  readonly attempts: number;
  readonly body: string;
}

/** The messages `child_faults` handled so far, from the daemon's log. */
export function records(daemon: CliProcess): HandledRecord[] {
  const handled: HandledRecord[] = [];
  for (const line of daemon.stdout) {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    const text = String(record.line);
    if (record.msg !== "child stderr" || !text.startsWith("handled ")) continue;
    const [, id, attempts, ...body] = text.split(" ");
    handled.push({
      pid: Number(record.child_pid),
      topic: String(record.topic),
      id: id!,
      attempts: Number(attempts),
      body: body.join(" "),
    });
  }
  return handled;
}

/** CPU time (user + system) a process has used, in clock ticks; null once it is gone. */
export async function cpuTicks(pid: number): Promise<number | null> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}
