/**
 * No silent downgrade (docs/operations.md, "Connections to nsqd"): with `nsq.tls` set, an nsqd that does not
 * negotiate TLS is refused, and the AUTH secret never crosses in clear.
 */

import assert from "node:assert/strict";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

Deno.test("nsq.tls set, nsqd without TLS: refused with an error naming it, retried, not ready, no AUTH", async () => {
  // nsqd asks this server about every AUTH it receives: a request here means
  // the secret reached nsqd.
  const authRequests: string[] = [];
  await using auth = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      authRequests.push(request.url);
      return Response.json({ ttl: 3600, identity: "test", authorizations: [] });
    },
  );
  await using nsq = await startNsq({
    lookupd: false,
    nsqdArgs: [`--auth-http-address=127.0.0.1:${auth.addr.port}`],
  });
  const nsqd = nsq.nsqds[0]!;
  const topic = uniqueTopic("downgrade");
  let handled = 0;
  await using daemon = await startInProcess({
    yaml: `
nsq:
  nsqd_tcp_addresses: [${nsqd.tcpAddress}]
  tls: { insecure_skip_verify: true }
  auth_secret: do-not-send-in-clear
workers:
  - topic: ${topic}
    channel: work
    worker: test/worker
`,
    workers: { "test/worker": { handle: () => void handled++ } },
    timings: { reconnectMinMs: 50, reconnectMaxMs: 100 },
  });
  await nsq.publish(topic, "{}");
  const refusals = () =>
    daemon.logs.filter((r) =>
      r.msg === "nsqd connection lost; reconnecting" && /TLS/.test(String(r.error))
    );
  await waitFor(() => refusals().length >= 3, { message: "three refused connections" });
  const [first] = refusals();
  assert.equal(first!.nsqd, nsqd.tcpAddress);
  assert.match(String(first!.error), new RegExp(`nsqd ${nsqd.tcpAddress}`));
  assert.deepEqual(refusals().slice(0, 3).map((r) => r.failures), [1, 2, 3], "backoff grows");
  const readiness = daemon.supervisor.readiness();
  assert.equal(readiness.ready, false);
  assert.deepEqual(readiness.reasons, [`${topic}/work: not subscribed on nsqd ${nsqd.tcpAddress}`]);
  assert.equal(handled, 0);
  assert.deepEqual(authRequests, [], "AUTH was never sent");
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.clients.length ?? 0, 0, "never subscribed");
});
