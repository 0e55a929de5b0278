/**
 * The changes `deno task dev` acts on, watched in a folder standing for the
 * repository: a code change is told by its path in it, a config change by
 * the path the config was given; with no daemon running, each wakes the loop.
 */

import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { TempDir } from "../../helpers/daemon_process.ts";
import { Changes } from "../../../tools/dev/changes.ts";
import { StopRequest } from "../../../tools/dev/stop_request.ts";

Deno.test("dev's changes: workers/ by the path in the repository, the config by its own", async () => {
  await using dir = await TempDir.create();
  await Deno.mkdir(dir.join("src"));
  await Deno.mkdir(dir.join("workers"));
  const configPath = await dir.writeConfig("workers: []\n");
  const root = pathToFileURL(`${dir.path}/`);
  using stop = new StopRequest();
  {
    using changes = new Changes(configPath, stop, root);
    await Deno.writeTextFile(dir.join("workers/echo.ts"), "export {};\n");
    assert.equal(await changes.next(), "workers/echo.ts");

    changes.clear();
    await Deno.writeTextFile(configPath, "workers: [] # edited\n");
    assert.equal(await changes.next(), configPath);
  }
});
