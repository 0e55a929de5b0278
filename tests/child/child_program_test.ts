/**
 * The command line of a child process: the compiled binary runs itself
 * with `child`; `deno run` runs the main module with the daemon's
 * permissions, never more.
 */

import assert from "node:assert/strict";
import { childCommand, childPermissions, findDenoConfig } from "../../src/child/child_program.ts";
import { fileURLToPath } from "node:url";

Deno.test("the compiled binary is its own child: only the prefix of the command line differs", () => {
  const compiled = childCommand({
    execPath: "/usr/local/bin/nsqworker",
    standalone: true,
    mainModule: "file:///tmp/deno-compile-nsqworker/main.ts",
    denoConfig: null,
    permissions: ["--allow-net"],
  });
  assert.deepEqual(compiled, { command: "/usr/local/bin/nsqworker", args: ["child"] });
  const run = childCommand({
    execPath: "/usr/bin/deno",
    standalone: false,
    mainModule: "file:///srv/app/main.ts",
    denoConfig: "/srv/app/deno.json",
    permissions: ["--allow-net", "--allow-read=/srv/app/workers"],
  });
  assert.deepEqual(run, {
    command: "/usr/bin/deno",
    args: [
      "run",
      "--no-prompt",
      "--config=/srv/app/deno.json",
      "--allow-net",
      "--allow-read=/srv/app/workers",
      "/srv/app/main.ts",
      "child",
    ],
  });
  assert.equal(compiled.args.at(-1), run.args.at(-1));
});

Deno.test("a child gets the permissions granted to the whole daemon, and read of the worker modules where the daemon has it", () => {
  const granted = new Set(["net", "env", "read:/srv/app/workers"]);
  const query = (descriptor: Deno.PermissionDescriptor): Deno.PermissionState => {
    const path = "path" in descriptor ? descriptor.path : undefined;
    return granted.has(path === undefined ? descriptor.name : `${descriptor.name}:${path}`)
      ? "granted"
      : "prompt";
  };
  assert.deepEqual(childPermissions(["/srv/app/workers", "/elsewhere"], query), [
    "--allow-net",
    "--allow-env",
    "--allow-read=/srv/app/workers",
  ]);
  granted.add("read");
  granted.add("run");
  assert.deepEqual(childPermissions(["/srv/app/workers"], query), [
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-run",
  ]);
  assert.deepEqual(childPermissions([], () => "denied"), []);
});

Deno.test("the deno.json of the main module is found from its folder up", () => {
  const repo = fileURLToPath(new URL("../../", import.meta.url));
  assert.equal(findDenoConfig(`${repo}tests/fixtures`), `${repo}deno.json`);
});
