/**
 * The systemd units in `deploy/`: `systemd-analyze verify` accepts them
 * without a warning, and the template's per-instance port reaches the
 * config's `http.listen`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { draftConfig } from "../src/config/load.ts";
import { REPO_DIR, TempDir } from "./helpers/daemon_process.ts";

const INSTALLED_BINARY = "/usr/local/bin/nsqworker";

/** `systemd-analyze` on PATH, or a failure that says how to get it. */
function systemdAnalyze(): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const path = join(dir, "systemd-analyze");
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    "Cannot verify the systemd units as systemd-analyze is not on PATH: install it " +
      "(Debian/Ubuntu: apt-get install systemd; .ci/run does)",
  );
}

/**
 * Runs `systemd-analyze verify` on `unit` (an instance name for a template),
 * from a copy whose ExecStart names a stand-in executable: verify checks that
 * the binary exists, and nsqworker is not installed where the tests run.
 */
async function verify(file: string, unit: string): Promise<{ code: number; output: string }> {
  await using dir = await TempDir.create();
  const stub = dir.join("nsqworker");
  await Deno.writeTextFile(stub, "#!/bin/sh\n", { mode: 0o755 });
  const text = await Deno.readTextFile(join(REPO_DIR, "deploy", file));
  assert.ok(text.includes(`ExecStart=${INSTALLED_BINARY} `), `${file} starts ${INSTALLED_BINARY}`);
  await Deno.writeTextFile(dir.join(file), text.replaceAll(INSTALLED_BINARY, stub));
  const { code, stdout, stderr } = await new Deno.Command(systemdAnalyze(), {
    args: ["verify", "--man=no", dir.join(unit)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: (decoder.decode(stdout) + decoder.decode(stderr)).trim() };
}

Deno.test("systemd-analyze verify accepts the template unit nsqworker@.service without a warning", async () => {
  // Parse problems are warnings that leave the exit code 0: the output must be empty too.
  assert.deepEqual(await verify("nsqworker@.service", "nsqworker@3.service"), {
    code: 0,
    output: "",
  });
});

Deno.test("systemd-analyze verify accepts nsqworker.service without a warning", async () => {
  assert.deepEqual(await verify("nsqworker.service", "nsqworker.service"), { code: 0, output: "" });
});

Deno.test("each instance of nsqworker@.service listens on its own port through ${NSQWORKER_HTTP_PORT}", async () => {
  const text = await Deno.readTextFile(join(REPO_DIR, "deploy", "nsqworker@.service"));
  const setting = /^Environment=NSQWORKER_HTTP_PORT=(\S+)$/m.exec(text)?.[1];
  assert.ok(setting !== undefined, "the unit sets NSQWORKER_HTTP_PORT");
  const ports = ["1", "2", "3", "4"].map((instance) => {
    const env = { NSQWORKER_HTTP_PORT: setting.replaceAll("%i", instance) };
    const draft = draftConfig(
      "nsq:\n  nsqd_tcp_addresses: [127.0.0.1:4150]\n" +
        "http:\n  listen: 127.0.0.1:${NSQWORKER_HTTP_PORT}\n" +
        "workers:\n  - { topic: t, channel: c, worker: demo/pageview }\n",
      "config.yaml",
      env,
    );
    assert.deepEqual(draft.issues, []);
    return draft.config?.http.listen?.port;
  });
  assert.deepEqual(ports, [4191, 4192, 4193, 4194]);
});
