/**
 * The sqlite store's path breaking mid-run, under load from a real nsqd: the
 * file removed, the directory replaced by a file, and the directory covered
 * by a read-only file system (root only: chmod does not stop root). Each
 * run must name the path in its store errors, apply `on_store_error`, keep
 * the daemon up, lose nothing and come back once the path works again.
 */

import assert from "node:assert/strict";
import { TempDir } from "../helpers/daemon_process.ts";
import { type InProcessDaemon, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { Ledger, makeIds, reportFigures } from "./ledger.ts";
import { startPublisher } from "./paced_publisher.ts";
import { waitSettled } from "./settled.ts";

const CHANNEL = "work";
const IDS = 3_000;

/** Runs `command`, true when it exits 0. */
async function run(command: string, ...args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
    .output();
  return success;
}

/**
 * Whether this test process may mount a file system (root, and a sandbox
 * that allows it): the read-only case needs it, as root ignores permissions.
 */
async function canMount(): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "nsqworker_mount_probe_" });
  try {
    if (!await run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir)) return false;
    return await run("umount", dir);
  } catch {
    return false;
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
}

/** What a fault does to the directory of the store, and how it is undone. */
interface PathFault {
  readonly name: string;
  readonly ignore?: boolean;
  break(dir: string, path: string): Promise<void>;
  repair(dir: string): Promise<void>;
}

const FAULTS: PathFault[] = [
  {
    name: "the file removed",
    async break(_dir, path) {
      await Deno.remove(path);
    },
    // The directory still works: the store reopens a new, empty database.
    repair: () => Promise.resolve(),
  },
  {
    // Writes fail even for root, so this runs where mounting is not allowed.
    name: "the directory moved away and a file put in its place",
    async break(dir) {
      await Deno.rename(dir, `${dir}.away`);
      await Deno.writeTextFile(dir, "not a directory\n");
    },
    async repair(dir) {
      await Deno.remove(dir);
      await Deno.rename(`${dir}.away`, dir);
    },
  },
  {
    name: "the directory covered by a read-only file system",
    ignore: !await canMount(),
    async break(dir) {
      assert.ok(await run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir), "mount");
    },
    async repair(dir) {
      assert.ok(await run("umount", dir), "umount");
    },
  },
];

function storeErrors(daemon: InProcessDaemon): string[] {
  return daemon.logs.flatMap((r) => typeof r.store_error === "string" ? [r.store_error] : []);
}

for (const fault of FAULTS) {
  Deno.test({
    name:
      `sqlite store, ${fault.name} mid-run: errors name the path, retried, nothing lost, recovers`,
    ignore: fault.ignore ?? false,
    async fn() {
      await using nsq = await startNsq({ lookupd: false });
      await using tmp = await TempDir.create();
      const dir = tmp.join("store");
      await Deno.mkdir(dir);
      const path = `${dir}/dedupe.db`;
      const topic = uniqueTopic("sqlite_path");
      await nsq.createChannel(topic, CHANNEL);
      const ledger = new Ledger();
      const yaml = [
        "nsq:",
        `  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]`,
        "defaults:",
        "  requeue_delay: 20ms",
        "  max_requeue_delay: 200ms",
        "  max_attempts: 1000",
        "dedupe:",
        `  store: sqlite:${path}`,
        "  on_store_error: retry",
        "workers:",
        `  - { topic: ${topic}, channel: ${CHANNEL}, worker: rec, max_in_flight: 20 }`,
        "",
      ].join("\n");
      const worker = {
        decode: "text" as const,
        handle(id: string) {
          ledger.handled(id);
        },
      };
      await using daemon = await startInProcess({ yaml, workers: { rec: worker } });
      await using publisher = startPublisher({
        nsq,
        topic,
        ids: makeIds("p", IDS),
        ledger,
        ratePerSec: 1_000,
      });
      let repaired = false;
      try {
        await waitFor(() => ledger.distinctHandled >= 600, { message: "600 handled" });
        await fault.break(dir, path);
        await waitFor(() => storeErrors(daemon).length > 0, {
          timeoutMs: 10_000,
          message: "a store error once the path broke",
        });
        const handledAtBreak = ledger.distinctHandled;
        await waitFor(() => ledger.publishedCount >= handledAtBreak + 300, {
          message: "300 more published while broken",
        });
        await fault.repair(dir);
        repaired = true;
      } finally {
        if (!repaired) await fault.repair(dir).catch(() => {});
      }
      await publisher.done;
      await waitSettled(nsq, topic, CHANNEL, ledger);
      const stats = daemon.supervisor.entries[0]!.stats.snapshot();
      const errors = storeErrors(daemon);
      assert.equal(daemon.supervisor.entries[0]!.state, "running", "the entry still runs");
      await daemon.shutdown();
      reportFigures(`sqlite_${fault.name.replaceAll(" ", "_")}`, {
        ...ledger.figures(),
        store_failures: stats.storeFailures,
      });
      assert.ok(stats.storeFailures > 0, "store failures counted");
      for (const error of errors) assert.ok(error.includes(path), `names the path: ${error}`);
      assert.deepEqual(ledger.lost(10), []);
      assert.deepEqual(ledger.strangers(), []);
      // Recovered: the store answers again, at the path.
      assert.ok((await Deno.stat(path)).isFile, "a database at the path again");
      assert.ok(
        daemon.logs.some((r) => String(r.msg).includes("reopened")),
        "the reopening is logged",
      );
    },
  });
}
