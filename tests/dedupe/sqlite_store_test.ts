/**
 * What the sqlite store adds to the store contract: persistence across
 * restarts and SIGKILL, sharing a file between stores, group commit, the
 * bounded background purge, and clear errors for files it cannot use.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { SQLITE_SCHEMA_VERSION, SqliteStore } from "../../src/dedupe/sqlite_store.ts";
import type { Claim } from "../../src/dedupe/store.ts";
import { REPO_DIR, TempDir } from "../helpers/daemon_process.ts";
import { waitFor } from "../helpers/wait_for.ts";

const SCOPE = "pageviews/counter";
const CHILD = fileURLToPath(new URL("../fixtures/sqlite_store_main.ts", import.meta.url));

function rows(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM dedupe_keys").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function claimed(store: SqliteStore, key: string, leaseMs = 60_000): Promise<string> {
  const claim = await store.claim(SCOPE, key, leaseMs);
  assert.equal(claim.status, "claimed", key);
  return (claim as Claim & { status: "claimed" }).token;
}

Deno.test("sqlite store: done keys and live claims survive a close and reopen", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  const first = new SqliteStore({ path, ttlMs: 3_600_000 });
  for (let i = 0; i < 50; i++) await first.done(SCOPE, `e${i}`, await claimed(first, `e${i}`));
  await claimed(first, "running");
  await first.close();

  const second = new SqliteStore({ path, ttlMs: 3_600_000 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => second.claim(SCOPE, `e${i}`, 60_000)),
    );
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set(["done"]));
    assert.equal((await second.claim(SCOPE, "running", 60_000)).status, "busy");
    assert.equal((await second.claim(SCOPE, "new", 60_000)).status, "claimed");
  } finally {
    await second.close();
  }
});

Deno.test("sqlite store: a done mark that resolved survives SIGKILL of its process", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  // Exactly the permission the compiled binary needs: read and write of the one path.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      `--config=${REPO_DIR}/deno.json`,
      `--allow-read=${path}`,
      `--allow-write=${path}`,
      CHILD,
      path,
      "200",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    while (!out.includes("recorded 200\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child exited early:\n${out}\n${await stderr}`);
      out += value;
    }
    child.kill("SIGKILL");
  } finally {
    await reader.cancel();
  }
  const status = await child.status;
  await stderr;
  assert.equal(status.signal, "SIGKILL");
  // Killed before any checkpoint or close: the marks are only in the WAL.
  assert.ok((await Deno.stat(`${path}-wal`)).size > 0);

  const store = new SqliteStore({ path, ttlMs: 3_600_000 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.claim("crash/test", `event-${i}`, 60_000)),
    );
    assert.equal(answers.filter((a) => a.status === "done").length, 200);
    // The claim of a handler that was running stays busy until its lease ends.
    assert.equal((await store.claim("crash/test", "in-flight", 60_000)).status, "busy");
  } finally {
    await store.close();
  }
});

Deno.test("sqlite store: two stores on one file see each other's claims and marks", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  const a = new SqliteStore({ path, ttlMs: 3_600_000 });
  const b = new SqliteStore({ path, ttlMs: 3_600_000 });
  try {
    const token = await claimed(a, "shared");
    assert.equal((await b.claim(SCOPE, "shared", 60_000)).status, "busy");
    await a.release(SCOPE, "shared", token);
    const other = await claimed(b, "shared");
    await a.done(SCOPE, "shared", "not-the-owner");
    assert.equal((await b.claim(SCOPE, "shared", 60_000)).status, "done");
    await b.release(SCOPE, "shared", other);
    assert.equal((await a.claim(SCOPE, "shared", 60_000)).status, "done");
    // Both write at once: each batch waits for the other's lock, none fails.
    const burst = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).claim(SCOPE, `k${i >> 1}`, 60_000)),
    );
    assert.equal(burst.filter((c) => c.status === "claimed").length, 100);
    assert.equal(burst.filter((c) => c.status === "busy").length, 100);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("sqlite store: calls made in one turn share one transaction", async () => {
  await using dir = await TempDir.create();
  const store = new SqliteStore({ path: dir.join("dedupe.db"), ttlMs: 3_600_000 });
  try {
    const before = store.commits;
    const claims = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.claim(SCOPE, `k${i}`, 60_000)),
    );
    assert.deepEqual(store.commits, { batches: before.batches + 1, ops: before.ops + 100 });
    await Promise.all(
      claims.map((c, i) => store.done(SCOPE, `k${i}`, (c as { token: string }).token)),
    );
    assert.deepEqual(store.commits, { batches: before.batches + 2, ops: before.ops + 200 });
  } finally {
    await store.close();
  }
});

Deno.test("sqlite store: close runs the calls still queued; later calls reject", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  const store = new SqliteStore({ path, ttlMs: 3_600_000 });
  const token = await claimed(store, "k");
  const marked = store.done(SCOPE, "k", token);
  await store.close();
  await marked;
  await assert.rejects(
    () => store.claim(SCOPE, "other", 60_000),
    (error: Error) => error.message === `the sqlite dedupe store at ${path} is closed`,
  );
  const again = new SqliteStore({ path, ttlMs: 3_600_000 });
  try {
    assert.equal((await again.claim(SCOPE, "k", 60_000)).status, "done");
  } finally {
    await again.close();
  }
});

Deno.test("sqlite store: expired keys are purged in the background, a bounded batch per tick", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  let clock = 1_000_000;
  const store = new SqliteStore({
    path,
    ttlMs: 1_000,
    now: () => clock,
    purgeIntervalMs: 30,
    purgeBatch: 100,
  });
  try {
    for (let i = 0; i < 240; i++) await store.done(SCOPE, `old${i}`, "");
    for (let i = 0; i < 10; i++) await claimed(store, `lapsed${i}`, 500);
    // Past the first sweep's keys: found by a later tick.
    for (let i = 0; i < 5; i++) await claimed(store, `zz${i}`, 500);
    clock += 2_000;
    for (let i = 0; i < 7; i++) await store.done(SCOPE, `live${i}`, "");
    assert.equal(rows(path), 262);
    // One tick deletes at most purgeBatch done keys, and sweeps purgeBatch keys (in key
    // order: lapsed0..9 come first) for lapsed claims; the next follows 50 ms later.
    let seen = 262;
    await waitFor(() => (seen = rows(path)) < 262, { intervalMs: 2, message: "a first purge" });
    assert.equal(seen, 262 - 100 - 10);
    await waitFor(() => rows(path) === 7, { message: "every expired key purged" });
    for (let i = 0; i < 7; i++) {
      assert.equal((await store.claim(SCOPE, `live${i}`, 60_000)).status, "done");
    }
  } finally {
    await store.close();
  }
});

Deno.test("sqlite store: a file it cannot use is an error that names it", async () => {
  await using dir = await TempDir.create();
  const garbage = dir.join("garbage.db");
  await Deno.writeTextFile(garbage, "this is not a database, just a text file of some length\n");
  assert.throws(
    () => new SqliteStore({ path: garbage, ttlMs: 1_000 }),
    (error: Error) =>
      error.message.startsWith(`Cannot open the sqlite dedupe store at ${garbage}: `) &&
      /not a database/.test(error.message),
  );

  const missing = dir.join("no/such/dir/dedupe.db");
  assert.throws(
    () => new SqliteStore({ path: missing, ttlMs: 1_000 }),
    (error: Error) =>
      error.message.startsWith(`Cannot open the sqlite dedupe store at ${missing}: `),
  );

  const newer = dir.join("newer.db");
  const db = new DatabaseSync(newer);
  db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(
    () => new SqliteStore({ path: newer, ttlMs: 1_000 }),
    new Error(
      `Cannot open the sqlite dedupe store at ${newer}: its schema version is ${
        SQLITE_SCHEMA_VERSION + 1
      }, this nsqworker reads version ${SQLITE_SCHEMA_VERSION}`,
    ),
  );

  assert.throws(() => new SqliteStore({ path: dir.join("x.db"), ttlMs: 0 }), RangeError);
});

Deno.test("sqlite store: a file renamed over its path (same path, another inode) is found, closed and the new one opened", async () => {
  await using dir = await TempDir.create();
  const path = dir.join("dedupe.db");
  const errors: string[] = [];
  const log = {
    debug() {},
    info() {},
    warning() {},
    error: (_msg: string, fields?: Record<string, unknown>) =>
      void errors.push(String(fields?.error)),
  };
  const pathCheckMs = 20;
  const store = new SqliteStore({ path, ttlMs: 3_600_000, pathCheckMs, log });
  try {
    await store.done(SCOPE, "old", await claimed(store, "old"));
    // Another database, with a key of its own, moved over the open file's path
    // in one step: the path always names a regular file, only its inode changes.
    const other = dir.join("other.db");
    const writer = new SqliteStore({ path: other, ttlMs: 3_600_000 });
    await writer.done(SCOPE, "new", await claimed(writer, "new"));
    await writer.close();
    await Deno.rename(other, path);

    // The path is looked at by the first call once pathCheckMs have passed.
    await new Promise((resolve) => setTimeout(resolve, pathCheckMs + 5));
    await assert.rejects(
      () => store.claim(SCOPE, "during", 60_000),
      new Error(
        `the sqlite dedupe store's file ${path} was removed or replaced while open (another file is there now); calls fail until the path can be opened again`,
      ),
    );
    assert.equal(errors.length, 1, "the replacement is logged once");
    // The next check opens the file now at the path, and reads its keys: not the
    // old file's through the journal the old file left at the path.
    await new Promise((resolve) => setTimeout(resolve, pathCheckMs + 5));
    assert.equal((await store.claim(SCOPE, "new", 60_000)).status, "done");
    assert.equal((await store.claim(SCOPE, "old", 60_000)).status, "claimed");
  } finally {
    await store.close();
  }
});
