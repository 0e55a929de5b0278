/**
 * Watches the config file for `--reload-on-change`.
 *
 * @module
 */

import { basename, dirname } from "node:path";

/** How long a burst of writes may last and still count as one save. */
const DEBOUNCE_MS = 200;

/**
 * Calls `onChange` after `path` changes. The directory is watched, not the
 * file: editors and `git checkout` save by renaming a new file over the old
 * one, and a watch on the file itself would stay on the replaced inode and
 * miss every later save. Events on other files of the directory are ignored;
 * changes within {@linkcode DEBOUNCE_MS} count as one.
 *
 * @example
 * ```ts
 * const watcher = watchConfigFile("config.yaml", async () => console.log("changed"));
 * watcher.close();
 * ```
 */
export function watchConfigFile(
  path: string,
  onChange: (reason: string) => Promise<void>,
): Deno.FsWatcher {
  const name = basename(path);
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  (async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      if (!event.paths.some((changed) => basename(changed) === name)) continue;
      clearTimeout(timer);
      timer = setTimeout(() => void onChange("file changed"), DEBOUNCE_MS);
    }
    clearTimeout(timer);
  })();
  return watcher;
}
