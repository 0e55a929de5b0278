/**
 * The redis store over TLS (`rediss://` with `dedupe.tls`) against a real
 * redis-server serving TLS only, with certificates made by openssl here:
 * server verification, mutual TLS, a wrong CA and a plaintext server are
 * each checked.
 */
import assert from "node:assert/strict";
import { RedisStore } from "../../src/dedupe/redis_store.ts";
import { createStore } from "../../src/dedupe/create_store.ts";
import { TempDir } from "../helpers/daemon_process.ts";
import { startRedis } from "../helpers/redis_server.ts";
import { makeCertificates, redisServerTls } from "../helpers/tls_certs.ts";
import { waitFor } from "../helpers/wait_for.ts";
import type { Logger } from "../../src/worker/worker.ts";
import { trapUncaught } from "../helpers/fakes.ts";

/** A logger that keeps the warnings it is given. */
function warnings(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const skip = () => {};
  const log = {
    debug: skip,
    info: skip,
    warning: (msg: string, props?: Record<string, unknown>) =>
      lines.push(`${msg} ${JSON.stringify(props ?? {})}`),
    error: skip,
  } as unknown as Logger;
  return { log, lines };
}

async function claimOnce(store: RedisStore): Promise<string> {
  const claim = await store.claim("tls/test", crypto.randomUUID(), 10_000);
  return claim.status;
}

/** Retries the first claim while the client connects (a claim made before the handshake fails at once). */
async function firstClaim(store: RedisStore): Promise<string> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    try {
      return await claimOnce(store);
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

Deno.test("the redis store speaks TLS to a rediss:// server, with mutual TLS, and refuses a wrong CA or a plaintext server", async (t) => {
  await using dir = await TempDir.create();
  await makeCertificates(dir, "good");
  await makeCertificates(dir, "other");
  await using redis = await startRedis({ tls: redisServerTls(dir, "good") });
  const ca = await Deno.readTextFile(dir.join("good-ca.pem"));
  const cert = await Deno.readTextFile(dir.join("good-client.pem"));
  const key = await Deno.readTextFile(dir.join("good-client.key"));

  await t.step("mutual TLS: the client certificate is accepted and claims work", async () => {
    const store = new RedisStore({ url: redis.url, ttlMs: 60_000, tls: { ca, cert, key } });
    try {
      assert.equal(await firstClaim(store), "claimed");
    } finally {
      await store.close();
    }
  });

  await t.step("through createStore and dedupe.tls file paths", async () => {
    const store = await createStore({
      store: { kind: "redis", url: redis.url },
      capacity: 1,
      ttlMs: 60_000,
      onStoreError: "retry",
      tls: {
        caFile: dir.join("good-ca.pem"),
        certFile: dir.join("good-client.pem"),
        keyFile: dir.join("good-client.key"),
        insecureSkipVerify: false,
      },
    });
    try {
      assert.equal(await firstClaim(store as RedisStore), "claimed");
    } finally {
      await store.close();
    }
  });

  await t.step(
    "no client certificate for a server that requires one: calls fail, the process lives on",
    async () => {
      using uncaught = trapUncaught();
      // Each refused handshake is logged by redis: that counts the attempts.
      const refused = redis.countLogged("peer did not return a certificate");
      const { log, lines } = warnings();
      const store = new RedisStore({
        url: redis.url,
        ttlMs: 60_000,
        log,
        tls: { ca },
        // Long enough for each attempt to finish before the next; the race needs that timing.
        maxReconnectDelayMs: 200,
      });
      try {
        await waitFor(() => lines.length > 0, { message: "the failure logged" });
        await assert.rejects(claimOnce(store), /unreachable/);
        // The process died in about one attempt of five: make 15.
        await waitFor(() => refused() >= 15, { message: "15 refused handshakes" });
        await assert.rejects(claimOnce(store), /unreachable/);
        assert.equal(store.connected, false);
      } finally {
        await store.close();
      }
      assert.deepEqual(uncaught.errors.map(String), [], "errors nobody caught");
      console.log(`no client certificate: ${lines[0]}`);
    },
  );

  await t.step("a server certificate from another CA is refused with a clear error", async () => {
    const { log, lines } = warnings();
    const store = new RedisStore({
      url: redis.url,
      ttlMs: 60_000,
      log,
      tls: {
        ca: await Deno.readTextFile(dir.join("other-ca.pem")),
        cert: await Deno.readTextFile(dir.join("other-client.pem")),
        key: await Deno.readTextFile(dir.join("other-client.key")),
      },
    });
    try {
      await waitFor(() => lines.length > 0, { message: "the failure logged" });
      await assert.rejects(claimOnce(store), /self-signed certificate in certificate chain/);
    } finally {
      await store.close();
    }
  });

  await t.step(
    "a plaintext server behind rediss:// is an error, never a plaintext fallback",
    async () => {
      await using plain = await startRedis();
      const url = plain.url.replace(/^redis:/, "rediss:");
      const { log, lines } = warnings();
      const store = new RedisStore({ url, ttlMs: 60_000, tls: { ca }, log, connectTimeoutMs: 300 });
      try {
        await waitFor(() => lines.length > 0, { message: "the failure logged" });
        await assert.rejects(claimOnce(store), /does the server speak TLS there/);
        assert.equal(store.connected, false);
      } finally {
        await store.close();
      }
      assert.ok(lines.length > 0, "the failure is logged");
      console.log(`plaintext server behind rediss://: ${lines[0]}`);
      assert.equal(await plain.command("DBSIZE"), ":0\r\n", "nothing was written in clear");
    },
  );
});
