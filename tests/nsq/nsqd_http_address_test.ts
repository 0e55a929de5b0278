/**
 * `nsqdHttpAddress`: an nsqd's HTTP address from the config or from
 * nsqlookupd's `/nodes`, against a real nsqlookupd and an nsqd whose ports
 * are not paired; unknown (and why) otherwise, never its TCP port + 1.
 */
import assert from "node:assert/strict";
import type { NsqConfig } from "../../src/config/types.ts";
import { nsqdHttpAddress } from "../../src/nsq/nsqd_http_address.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { validConfig } from "../helpers/valid_config.ts";

function nsqConfig(lines: string[]): NsqConfig {
  const yaml = ["nsq:", ...lines, "workers: [{topic: t, channel: c, worker: w}]"].join("\n");
  return validConfig(yaml, "config.yaml").nsq;
}

/** A loopback port nothing listens on now. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return (listener.addr as Deno.NetAddr).port;
}

Deno.test("nsqdHttpAddress: from nsqlookupd's /nodes, matched by TCP port and the address nsqd registered from", async () => {
  // Broadcasting a name the config does not use, as an nsqd started without
  // --broadcast-address does (it broadcasts its hostname).
  await using nsq = await startNsq({ nsqdArgs: ["--broadcast-address=nsqd.invalid"] });
  const nsqd = nsq.nsqds[0]!;
  assert.notEqual(nsqd.httpPort, nsqd.tcpPort + 1, "the ports happen to be paired: run again");
  const tcp = { host: "127.0.0.1", port: nsqd.tcpPort };
  const down = `http://127.0.0.1:${closedPort()}`;
  const config = nsqConfig([
    `  lookupd_http_addresses: [${down}, ${nsq.lookupd!.httpUrl}]`,
    `  publish_nsqd_tcp_address: ${nsqd.tcpAddress}`,
  ]);
  let found = await nsqdHttpAddress(config, tcp);
  await waitFor(async () => (found = await nsqdHttpAddress(config, tcp)).url !== null, {
    message: "nsqd registered with nsqlookupd",
  });
  assert.deepEqual(found, { url: nsqd.httpUrl });

  const named = nsqConfig([
    `  lookupd_http_addresses: [${nsq.lookupd!.httpUrl}]`,
    `  publish_nsqd_tcp_address: ${nsqd.tcpAddress}`,
    `  nsqd_http_addresses: { ${nsqd.tcpAddress}: 127.0.0.1:1 }`,
  ]);
  assert.deepEqual(
    await nsqdHttpAddress(named, tcp),
    { url: "http://127.0.0.1:1" },
    "config first",
  );

  const other = { host: "127.0.0.1", port: closedPort() };
  const unlisted = await nsqdHttpAddress(config, other);
  assert.equal(unlisted.url, null);
  assert.match(
    "why" in unlisted ? unlisted.why : "",
    new RegExp(
      `^the HTTP address of nsqd 127\\.0\\.0\\.1:${other.port} is unknown: no nsqlookupd lists it ` +
        `\\(${down}/nodes did not answer: .+\\), and nsq\\.nsqd_http_addresses does not name it$`,
    ),
  );
});
