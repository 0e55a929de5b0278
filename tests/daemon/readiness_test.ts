/**
 * `/ready` against real nsqlookupd and nsqd (docs/http.md): ready when every
 * entry is subscribed on each nsqd that discovery lists; a topic no nsqd has
 * yet counts once nsqlookupd has answered.
 */

import assert from "node:assert/strict";
import { defineWorker } from "../../src/mod.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

const noop = defineWorker<string>({ decode: "text", handle() {} });

function yaml(lookupdUrl: string, topic: string): string {
  return `nsq:\n  lookupd_http_addresses: [${lookupdUrl}]\nhttp: { listen: null }\n` +
    `workers:\n  - { topic: ${topic}, channel: c, worker: noop }\n`;
}

/** A loopback port nothing listens on right now. */
function unusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("ready: a topic nobody has published to yet, once nsqlookupd has answered", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("unpublished");
  await using daemon = await startInProcess({
    yaml: yaml(nsq.lookupd!.httpUrl, topic),
    workers: { noop },
  });
  await waitFor(() => daemon.supervisor.readiness().ready, {
    message: `ready although no nsqd has ${topic}: ${daemon.supervisor.readiness().reasons}`,
  });
  assert.equal(await nsq.topic(topic), null, "nsqd still does not have the topic");
});

Deno.test("not ready while no nsqlookupd has answered", async () => {
  const topic = uniqueTopic("no_lookupd");
  await using daemon = await startInProcess({
    yaml: yaml(`http://127.0.0.1:${unusedPort()}`, topic),
    workers: { noop },
  });
  await waitFor(() => daemon.logs.some((r) => r.msg === "nsqlookupd did not answer"));
  assert.deepEqual(daemon.supervisor.readiness(), {
    ready: false,
    reasons: [`${topic}/c: no nsqlookupd has answered yet`],
  });
});

Deno.test("not ready while an nsqd that nsqlookupd lists is unreachable", async () => {
  await using nsq = await startNsq({ nsqds: 2 });
  const topic = uniqueTopic("hung_nsqd");
  await Promise.all([nsq.createTopic(topic, 0), nsq.createTopic(topic, 1)]);
  await waitFor(async () => {
    const answer = await fetch(`${nsq.lookupd!.httpUrl}/lookup?topic=${topic}`);
    return answer.ok && (await answer.json()).producers.length === 2;
  }, { message: "nsqlookupd to list both nsqd" });
  const hung = nsq.nsqds[1]!;
  hung.suspend();
  try {
    await using daemon = await startInProcess({
      yaml: yaml(nsq.lookupd!.httpUrl, topic),
      workers: { noop },
    });
    await waitFor(() => daemon.logs.some((r) => r.msg === "connected to nsqd"));
    const readiness = daemon.supervisor.readiness();
    assert.deepEqual(readiness, {
      ready: false,
      reasons: [`${topic}/c: not subscribed on nsqd ${hung.tcpAddress}`],
    });
    hung.resume();
    await waitFor(() => daemon.supervisor.readiness().ready, {
      timeoutMs: 15_000,
      message: "ready once the hung nsqd answers",
    });
  } finally {
    hung.resume();
  }
});
