/**
 * Where the bench keeps things and how it gets its peers ready: the NSQ
 * binaries, the Node.js packages (nsqjs, the chart renderer) and the
 * Python virtualenv of the seed, all under the git-ignored `.cache/bench/`.
 * A peer whose preparation fails is reported as unavailable, with why.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nsqBin } from "../tools/nsq_bin.ts";
import { run } from "./child.ts";

/** The repository root. */
export const REPO_DIR: string = fileURLToPath(new URL("../", import.meta.url));
export const BENCH_DIR: string = join(REPO_DIR, "bench");
export const CACHE_DIR: string = join(REPO_DIR, ".cache", "bench");
export const NODE_DIR: string = join(CACHE_DIR, "node");
export const VENV_DIR: string = join(CACHE_DIR, "venv");
/** Temporary files (configs, nsqd data, latency records); TMPDIR points here. */
export const TMP_DIR: string = join(CACHE_DIR, "tmp");

/** What the peers need, or why they cannot run. */
export interface Tools {
  readonly deno: string;
  readonly benchReader: string | Error;
  readonly node: string | Error;
  /** The venv's python, and whether the seed itself imports (else a bare pynsq Reader stands in). */
  readonly python: { path: string; version: string; seedError: string | null } | Error;
  readonly redisServer: string | null;
}

async function stamp(dir: string, content: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(join(dir, ".bench-stamp"))) === content;
  } catch {
    return false;
  }
}

/** `npm ci` of bench/node/package.json into .cache/bench/node, when its lock changed. */
async function prepareNode(): Promise<string | Error> {
  try {
    const lock = await Deno.readTextFile(join(BENCH_DIR, "node", "package-lock.json"));
    if (await stamp(NODE_DIR, lock)) return "node";
    await Deno.mkdir(NODE_DIR, { recursive: true });
    await Deno.copyFile(join(BENCH_DIR, "node", "package.json"), join(NODE_DIR, "package.json"));
    await Deno.writeTextFile(join(NODE_DIR, "package-lock.json"), lock);
    console.error("bench: installing the Node.js packages (npm ci) into .cache/bench/node ...");
    await run("npm ci", "npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: NODE_DIR,
      timeoutMs: 300_000,
    });
    await Deno.writeTextFile(join(NODE_DIR, ".bench-stamp"), lock);
    return "node";
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** A venv with bench/seed/requirements.txt, rebuilt when that file changes. */
async function preparePython(): Promise<Tools["python"]> {
  const python = join(VENV_DIR, "bin", "python");
  try {
    const requirements = await Deno.readTextFile(join(BENCH_DIR, "seed", "requirements.txt"));
    if (!(await stamp(VENV_DIR, requirements))) {
      console.error("bench: creating the seed's virtualenv in .cache/bench/venv ...");
      await Deno.remove(VENV_DIR, { recursive: true }).catch(() => {});
      await run("python3 -m venv", "python3", ["-m", "venv", VENV_DIR]);
      await run("pip install", python, [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        join(BENCH_DIR, "seed", "requirements.txt"),
      ], { timeoutMs: 300_000 });
      await Deno.writeTextFile(join(VENV_DIR, ".bench-stamp"), requirements);
    }
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  const version = (await run("python --version", python, ["--version"])).trim();
  let seedError: string | null = null;
  try {
    await run("seed import", python, ["-c", "import nsqworker.initiator, nsq"], {
      cwd: join(BENCH_DIR, "seed"),
    });
  } catch (error) {
    seedError = (error as Error).message.trim().split("\n").slice(-1)[0] ?? "import failed";
    try {
      await run("pynsq import", python, ["-c", "import nsq"]);
    } catch (bare) {
      return bare as Error;
    }
  }
  return { path: python, version, seedError };
}

async function onPath(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const info = await Deno.stat(join(dir, name));
      if (info.isFile) return join(dir, name);
    } catch {
      // Not in this folder.
    }
  }
  return null;
}

/**
 * Prepares every peer's tools (in parallel) and Deno's module cache for the
 * bench's own scripts, so that no download happens inside a measurement.
 */
export async function prepareTools(): Promise<Tools> {
  await Deno.mkdir(TMP_DIR, { recursive: true });
  const [benchReader, node, python, redisServer] = await Promise.all([
    nsqBin("bench_reader").catch((error: Error) => error),
    prepareNode(),
    preparePython(),
    onPath("redis-server"),
    run("deno cache", Deno.execPath(), [
      "cache",
      `--config=${join(REPO_DIR, "deno.json")}`,
      join(BENCH_DIR, "daemon_main.ts"),
      join(BENCH_DIR, "readers", "nsqjs_deno.ts"),
      join(BENCH_DIR, "probe_raw_reader.ts"),
    ], { cwd: REPO_DIR }),
  ]);
  return { deno: Deno.execPath(), benchReader, node, python, redisServer };
}
