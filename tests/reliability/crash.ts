/**
 * The crash scenario, shared by the fast test and the soak: `nsqworker run`
 * as a process is SIGKILLed at random moments while messages are published,
 * and started again each time. The ledger worker writes a line per handler
 * run before it returns, so the file tells which ids were handled and how
 * often, whatever the kills interrupted.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnCli, TempDir } from "../helpers/daemon_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { Ledger, makeIds, readLedgerFile, reportFigures } from "./ledger.ts";
import { startPublisher } from "./paced_publisher.ts";
import { Prng } from "./prng.ts";

/** Options of {@linkcode runCrashScenario}. */
export interface CrashOptions {
  readonly messages: number;
  readonly kills: number;
  readonly ratePerSec: number;
  readonly maxInFlight: number;
  /** How long each handler waits before recording, so that messages are in flight. */
  readonly sleepMs: number;
  /**
   * Each daemon is killed this long after it connected to nsqd (so while
   * it consumes), drawn from the seeded PRNG.
   */
  readonly killAfterMs: readonly [number, number];
  readonly seed: number;
  /** How long the last daemon may take to handle what is left. */
  readonly finishTimeoutMs: number;
}

/** What a crash run shows. */
export interface CrashFigures {
  readonly published: number;
  readonly handled: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly kills: number;
  /**
   * The killed daemon's in-flight count on nsqd just before each kill:
   * what nsqd redelivers after its msg-timeout, and all that can be
   * handled twice.
   */
  readonly inFlightAtKills: readonly number[];
  /** `max_in_flight × kills`. */
  readonly bound: number;
  readonly seed: number;
  readonly seconds: number;
}

/** nsqd redelivers what a killed daemon had in flight only after this. */
const MSG_TIMEOUT = "2s";
const CHANNEL = "crash";

/** Runs the scenario, asserts that nothing was lost, and returns (and prints) the figures. */
export async function runCrashScenario(options: CrashOptions): Promise<CrashFigures> {
  const started = performance.now();
  const random = new Prng(options.seed);
  await using nsq = await startNsq({ lookupd: false, nsqdArgs: [`--msg-timeout=${MSG_TIMEOUT}`] });
  await using dir = await TempDir.create();
  const topic = uniqueTopic("crash");
  const out = dir.join("ledger.txt");
  const config = await dir.writeConfig({
    nsq: { nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress] },
    log: { level: "info", format: "json" },
    http: { listen: null },
    shutdown_timeout: "10s",
    workers: [{
      topic,
      channel: CHANNEL,
      worker: "ledger",
      max_in_flight: options.maxInFlight,
      options: { out, sleep_ms: options.sleepMs },
    }],
  });
  // The channel exists before the first daemon, so no message waits in the topic alone.
  await nsq.createChannel(topic, CHANNEL);
  const ledger = new Ledger();
  await using publisher = startPublisher({
    nsq,
    topic,
    ids: makeIds("c", options.messages),
    ledger,
    ratePerSec: options.ratePerSec,
  });

  const inFlightAtKills: number[] = [];
  for (let kill = 0; kill < options.kills; kill++) {
    await using daemon = spawnCli(["run", "-c", config], { writeDir: dir.path });
    await daemon.waitForLine((line) => line.includes('"msg":"connected to nsqd"'));
    const [min, max] = options.killAfterMs;
    // The kill moment is the one fixed wait: random on purpose, and replayable by its seed.
    await new Promise((resolve) => setTimeout(resolve, random.int(min, max)));
    // Killed daemons leave the channel's clients at once, their messages in flight until the timeout.
    const clients = (await nsq.channel(topic, CHANNEL))?.clients ?? [];
    assert.equal(daemon.exited, null, `daemon ${kill + 1} exited on its own:\n${tail(daemon)}`);
    daemon.signal("SIGKILL");
    await daemon.status;
    inFlightAtKills.push(clients.reduce((sum, client) => sum + client.in_flight_count, 0));
  }

  await using daemon = spawnCli(["run", "-c", config], { writeDir: dir.path });
  await publisher.done;
  const seen = new Set<string>();
  await waitFor(async () => {
    for (const line of await readLedgerFile(out)) seen.add(line.id);
    return seen.size >= ledger.publishedCount;
  }, {
    timeoutMs: options.finishTimeoutMs,
    intervalMs: 200,
    message: `every published id handled (seed ${options.seed})`,
  });
  daemon.signal("SIGTERM");
  const { code } = await daemon.status;
  assert.equal(code, 0, tail(daemon));
  await waitFor(async () => {
    const channel = await nsq.channel(topic, CHANNEL);
    return channel?.in_flight_count === 0 && channel.depth === 0 && channel.deferred_count === 0;
  }, { message: "nothing left in nsqd" });

  for (const line of await readLedgerFile(out)) ledger.handled(line.id);
  const { published, handled, lost, duplicated } = ledger.figures();
  const figures: CrashFigures = {
    published,
    handled,
    lost,
    duplicated,
    kills: options.kills,
    inFlightAtKills,
    bound: options.maxInFlight * options.kills,
    seed: options.seed,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
  reportFigures("crash", figures);
  assert.equal(published, options.messages);
  assert.deepEqual(ledger.lost(10), [], `ids lost (seed ${options.seed})`);
  assert.deepEqual(ledger.strangers(), []);
  assert.ok(
    duplicated <= figures.bound,
    `${duplicated} duplicates, more than max_in_flight × kills = ${figures.bound} (seed ${options.seed})`,
  );
  return figures;
}

function tail(daemon: { stdout: string[]; stderr: string[] }): string {
  return [...daemon.stdout.slice(-10), ...daemon.stderr.slice(-10)].join("\n");
}
