/**
 * Edges of an entry's life and of publishing: a signal while setup() runs,
 * a stop during setup(), and publishes nsqd would answer by closing the
 * connection.
 */

import assert from "node:assert/strict";
import { logger } from "../../src/observe/log.ts";
import { NsqPublisher } from "../../src/entry/publisher.ts";
import type { WorkerDefinition } from "../../src/worker/worker.ts";
import { PLAIN_CONNECTION } from "../helpers/fakes.ts";
import { startDaemon, TempDir } from "../helpers/daemon_process.ts";
import { deferred, startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

Deno.test("SIGTERM while a worker's setup() still runs ends the daemon with 0", async () => {
  await using nsq = await startNsq({ lookupd: false });
  await using dir = await TempDir.create();
  await using daemon = await startDaemon(
    dir,
    `nsq:\n  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]\nhttp: { listen: null }\n` +
      `workers:\n  - { topic: ${uniqueTopic("hung")}, channel: c, worker: hung_setup }\n`,
  );
  await daemon.waitForLine((line) => line.includes('"msg":"starting"'));
  daemon.signal("SIGTERM");
  assert.equal((await daemon.status).code, 0);
});

Deno.test("an entry stopped while its setup() runs still gets its teardown()", async () => {
  const setup = deferred();
  let tornDown = 0;
  const definition: WorkerDefinition = {
    setup: () => setup.promise,
    handle() {},
    teardown: () => void tornDown++,
  };
  await using daemon = await startInProcess({
    yaml: "nsq:\n  nsqd_tcp_addresses: [127.0.0.1:1]\nshutdown_timeout: 1s\n" +
      "workers:\n  - { topic: t, channel: c, worker: w }\n",
    workers: { w: definition },
    waitForStart: false,
  });
  await daemon.shutdown();
  assert.equal(tornDown, 0, "not before setup() has finished");
  setup.resolve();
  await daemon.started;
  assert.equal(tornDown, 1);
  assert.equal(daemon.supervisor.entries[0]!.state, "stopped");
});

Deno.test("a publish nsqd would refuse fails alone, before the wire", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const [host, port] = nsq.nsqds[0]!.tcpAddress.split(":");
  const publisher = new NsqPublisher({
    address: { host: host!, port: Number(port) },
    topicPrefix: "",
    connection: PLAIN_CONNECTION,
    log: logger("test"),
  });
  const topic = uniqueTopic("refuse");
  try {
    const results = await Promise.allSettled([
      publisher.publishDeferred(topic, "late", 2 * 3_600_000),
      publisher.publish("not a topic!", "x"),
      publisher.publish(topic, ""),
      publisher.publish(topic, new Uint8Array(1_048_577)),
      publisher.publish(topic, "fine"),
    ]);
    const reasons = results.map((r) => r.status === "rejected" ? String(r.reason.message) : "ok");
    assert.match(reasons[0]!, /over nsqd's --max-req-timeout/);
    assert.match(reasons[1]!, /not a valid NSQ name/);
    assert.match(reasons[2]!, /empty message/);
    assert.match(reasons[3]!, /over nsqd's --max-msg-size/);
    assert.equal(reasons[4], "ok");
    await waitFor(async () => (await nsq.topic(topic))?.message_count === 1);
  } finally {
    await publisher.close();
  }
});
