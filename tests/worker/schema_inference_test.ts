/**
 * A worker's `body` type is inferred from its schema, with no type
 * parameter: a wrong field access fails `deno check`, a right one passes.
 * The fixtures are written to a temporary folder (a fixture that must not
 * compile cannot sit in tests/, which `deno check tests/` checks).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_DIR } from "../helpers/daemon_process.ts";
import { typedWorker } from "../helpers/typed_worker.ts";

async function check(source: string): Promise<{ code: number; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "nsqworker_infer_" });
  try {
    const file = join(dir, "worker.ts");
    await Deno.writeTextFile(file, source);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", join(REPO_DIR, "deno.json"), file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code, output: text.decode(stdout) + text.decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("body is typed by the schema: body.clicks compiles, body.clickz does not", async () => {
  const [right, wrong] = await Promise.all([
    check(typedWorker("body.clicks")),
    check(typedWorker("body.clickz")),
  ]);
  assert.equal(right.code, 0, right.output);
  assert.notEqual(wrong.code, 0, "a wrong field access must not compile");
  assert.match(wrong.output, /Property 'clickz' does not exist on type '\{ clicks: number;/);
});
