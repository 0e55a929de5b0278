/**
 * The worker modules that exist under a `workers/` folder, by name, so that
 * a `worker:` naming one that does not can be answered with the one meant.
 *
 * @module
 */

import { WORKER_NAME } from "../config/names.ts";

/**
 * The names (`demo/pageview`) of the `.ts` modules under `dir`, at any depth.
 * Only a suggestion rests on it, so a folder that cannot be read gives
 * what was found so far rather than an error.
 */
export async function workerNames(dir: URL): Promise<string[]> {
  const names: string[] = [];
  const walk = async (folder: URL, prefix: string): Promise<void> => {
    for await (const entry of Deno.readDir(folder)) {
      // A linked folder is not followed: it could lead back to itself.
      if (entry.isDirectory) {
        await walk(new URL(`${entry.name}/`, folder), `${prefix}${entry.name}/`);
      } else if (entry.name.endsWith(".ts")) {
        const name = `${prefix}${entry.name.slice(0, -".ts".length)}`;
        if (WORKER_NAME.test(name)) names.push(name);
      }
    }
  };
  try {
    await walk(dir, "");
  } catch {
    // Unreadable (no permission, gone): no suggestion from there.
  }
  return names;
}
