/**
 * A daemon whose redis store has no client certificate for a server that
 * requires one (mutual TLS): the daemon stays up, every claim fails and
 * `on_store_error: process` handles each message without dedupe.
 */
import assert from "node:assert/strict";
import { TempDir } from "../helpers/daemon_process.ts";
import { trapUncaught } from "../helpers/fakes.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";
import { startRedis } from "../helpers/redis_server.ts";
import { makeCertificates, redisServerTls } from "../helpers/tls_certs.ts";

Deno.test("a daemon without the client certificate redis requires stays up; on_store_error applies", async () => {
  using uncaught = trapUncaught();
  await using dir = await TempDir.create();
  await makeCertificates(dir, "mtls");
  await using redis = await startRedis({ tls: redisServerTls(dir, "mtls") });
  const refused = redis.countLogged("peer did not return a certificate");
  await using nsq = await startNsq();
  const topic = uniqueTopic("mtls");
  const handled: string[] = [];
  await using daemon = await startInProcess({
    yaml: JSON.stringify({
      nsq: {
        nsqd_tcp_addresses: [nsq.nsqds[0]!.tcpAddress],
        publish_nsqd_tcp_address: nsq.nsqds[0]!.tcpAddress,
      },
      dedupe: {
        store: redis.url,
        tls: { ca_file: dir.join("mtls-ca.pem") },
        on_store_error: "process",
      },
      http: { listen: null },
      shutdown_timeout: "5s",
      workers: [{ topic, channel: "work", worker: "test/worker" }],
    }),
    workers: {
      "test/worker": {
        dedupeKey: (body: { id: string }) => body.id,
        handle(body: { id: string }) {
          handled.push(body.id);
        },
      },
    },
  });
  // The process died in about one refused handshake of five; with the default backoff, six take ~3 s.
  await waitFor(() => refused() >= 6, { message: "6 refused handshakes" });
  const ids = Array.from({ length: 20 }, (_, i) => `m${i}`);
  await nsq.publishMany(topic, ids.map((id) => JSON.stringify({ id })));
  await waitFor(() => handled.length === 20, { message: "all 20 handled without dedupe" });
  const stats = daemon.supervisor.entries[0]!.stats.snapshot();
  assert.deepEqual([...handled].sort(), [...ids].sort());
  assert.equal(stats.dedupeBypassed, 20);
  assert.equal(stats.storeFailures, 20);
  assert.equal(daemon.supervisor.entries[0]!.state, "running");
  const lost = daemon.logs.find((r) => r.msg === "redis dedupe store unreachable; reconnecting");
  assert.match(String(lost?.error), /CertificateRequired|Socket closed/);
  assert.deepEqual(uncaught.errors.map(String), [], "errors nobody caught");
});
