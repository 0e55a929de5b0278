/**
 * The probes `deno task dev` uses before it starts NSQ: each tells nsqd,
 * nsqlookupd, another program and nothing apart, against real ones.
 */
import assert from "node:assert/strict";
import { canListen, probeNsqd, probeNsqlookupd } from "../../tools/nsq_probe.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";

const HOST = "127.0.0.1";

Deno.test("probeNsqd and probeNsqlookupd tell the daemon they look for from anything else", async () => {
  await using nsq = await startNsq();
  const nsqd = nsq.nsqds[0]!;
  const lookupd = nsq.lookupd!;
  const closed = Deno.listen({ hostname: HOST, port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();

  assert.equal(await probeNsqd({ host: HOST, port: nsqd.tcpPort }), "nsqd");
  assert.equal(await probeNsqd({ host: HOST, port: nsqd.httpPort }), "other", "an HTTP server");
  assert.equal(await probeNsqd({ host: HOST, port: lookupd.tcpPort }), "other", "nsqlookupd");
  assert.equal(await probeNsqd({ host: HOST, port: closedPort }), "nothing");

  const at = (port: number) => probeNsqlookupd(`http://${HOST}:${port}`, { host: HOST, port });
  assert.equal(await at(lookupd.httpPort), "nsqlookupd");
  assert.equal(await at(nsqd.httpPort), "other", "nsqd's HTTP API has no /nodes");
  assert.equal(await at(closedPort), "nothing");

  assert.equal(canListen({ host: HOST, port: nsqd.httpPort }), false);
  assert.equal(canListen({ host: HOST, port: closedPort }), true);
});
