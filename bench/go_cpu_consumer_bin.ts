/**
 * Locates the go-nsq consumer of the CPU-bound row (bench/go_cpu_consumer/),
 * building it with `go` through tools/go_build.ts when it is not cached.
 * Unlike NSQ's pinned release, its source lives here and changes, so the
 * cache folder is named after a hash of the module's files: an edited
 * main.go is built afresh, never run stale.
 *
 * @module
 */

import { join } from "node:path";
import { type GoTools, locateGoTool } from "../tools/go_build.ts";
import { BENCH_DIR, CACHE_DIR } from "./env.ts";

/** The program's name, as the binary is called. */
export const GO_CPU_CONSUMER = "go_cpu_consumer";

const MODULE_DIR = join(BENCH_DIR, GO_CPU_CONSUMER);
/** The module's files whose content decides the build. */
const SOURCES = ["go.mod", "go.sum", "main.go"] as const;

/** One source file of a Go module: its name and text. */
export interface SourceFile {
  readonly name: string;
  readonly text: string;
}

/**
 * The cache folder of a build of `sources`: `PARENT/<first 16 hex digits of
 * the SHA-256 of every file's name and text>`, the same for the same files
 * in any order, another as soon as one byte of them changes.
 */
export async function sourceCacheDir(
  parent: string,
  sources: readonly SourceFile[],
): Promise<string> {
  const sorted = [...sources].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  // NUL cannot occur in a file name, so no two sets of files hash the same text.
  const text = sorted.map(({ name, text }) => `${name}\0${text.length}\0${text}`).join("\0");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0"));
  return join(parent, hex.join("").slice(0, 16));
}

/** One build shared by every caller in this process. */
const building: { current?: Promise<void> | undefined } = {};

/**
 * The path of the go-nsq CPU-bound consumer: `GO_CPU_CONSUMER_BIN`, else
 * `.cache/bench/go_cpu_consumer/<hash>/bin/`, else built there with `go`
 * (a few seconds with go-nsq in Go's module cache). Older builds beside it
 * are removed.
 *
 * @throws {Error} when it is not cached and cannot be built (no `go`, or the
 * build failed), saying how to get it.
 */
export async function goCpuConsumerBin(): Promise<string> {
  const parent = join(CACHE_DIR, GO_CPU_CONSUMER);
  const sources = await Promise.all(
    SOURCES.map(async (name) => ({ name, text: await Deno.readTextFile(join(MODULE_DIR, name)) })),
  );
  const cacheDir = await sourceCacheDir(parent, sources);
  const tools: GoTools<typeof GO_CPU_CONSUMER> = {
    label: "the bench's go-nsq consumer (bench/go_cpu_consumer)",
    moduleDir: MODULE_DIR,
    cacheDir,
    packages: { [GO_CPU_CONSUMER]: `nsqworker/bench/${GO_CPU_CONSUMER}` },
    howTo: [
      "To get it, do one of:",
      "  - install Go 1.24 or newer (https://go.dev/dl/) and rerun: the bench builds it into",
      `    ${parent};`,
      "  - set GO_CPU_CONSUMER_BIN to a binary built from bench/go_cpu_consumer.",
    ].join("\n"),
  };
  const path = await locateGoTool(tools, GO_CPU_CONSUMER, building);
  await removeOtherBuilds(parent, cacheDir);
  return path;
}

/** Removes the builds of earlier sources; they are never run again. */
async function removeOtherBuilds(parent: string, keep: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(parent)) {
      const path = join(parent, entry.name);
      if (entry.isDirectory && path !== keep) await Deno.remove(path, { recursive: true });
    }
  } catch (error) {
    // No parent folder: the binary came from GO_CPU_CONSUMER_BIN or PATH.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
