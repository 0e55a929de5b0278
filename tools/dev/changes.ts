/**
 * The changes the dev loop acts on: to the code and to the config file.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import type { StopRequest } from "./stop_request.ts";

/** Editors write in bursts: changes within this long restart the daemon once. */
const DEBOUNCE_MS = 200;

/**
 * Changes to the code (`src/`, `workers/`) and to the config file, for the
 * loop to wait on. A code change restarts a running daemon; a config change
 * is left to the daemon while one runs (it reloads the file), and otherwise
 * starts the check again.
 */
export class Changes implements Disposable {
  /** The change not yet acted on, by path; null: none. */
  pending: string | null = null;
  readonly #stop: StopRequest;
  readonly #watchers: Deno.FsWatcher[];

  /** Watches `configPath` and the code under `root` (the repository). */
  constructor(configPath: string, stop: StopRequest, root: URL) {
    this.#stop = stop;
    const config = resolve(configPath);
    const codeDirs = [new URL("src/", root).pathname, new URL("workers/", root).pathname];
    const code = Deno.watchFs(codeDirs, { recursive: true });
    // The config's folder, not the file: editors that save by renaming replace the file watched.
    const folder = Deno.watchFs(dirname(config), { recursive: false });
    this.#watchers = [code, folder];
    this.#read(code, () => true, (path) => path.replace(root.pathname, ""), true);
    this.#read(folder, (path) => path === config, () => configPath, false);
  }

  /** Forgets the changes so far. */
  clear(): void {
    this.pending = null;
  }

  /** Waits for a change; resolves with its path, or null at a stop request. */
  async next(): Promise<string | null> {
    while (this.pending === null && !this.#stop.requested) await this.#stop.next();
    return this.#stop.requested ? null : this.pending;
  }

  async #read(
    watcher: Deno.FsWatcher,
    wanted: (path: string) => boolean,
    shown: (path: string) => string,
    isCode: boolean,
  ): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      const path = event.paths.find(wanted);
      if (path === undefined) continue;
      // Editors write in bursts: act once, after the last.
      clearTimeout(timer);
      timer = setTimeout(() => this.#changed(shown(path), isCode), DEBOUNCE_MS);
    }
    clearTimeout(timer);
  }

  #changed(path: string, isCode: boolean): void {
    const daemon = this.#stop.daemon;
    if (daemon !== null) {
      if (!isCode) return; // the daemon runs with --reload-on-change
      console.error(`dev: ${path} changed; restarting the daemon`);
      this.pending = path;
      try {
        daemon.kill("SIGTERM");
      } catch {
        // It has just exited; the loop sees the change.
      }
      return;
    }
    this.pending = path;
    this.#stop.wake();
  }

  [Symbol.dispose](): void {
    for (const watcher of this.#watchers) watcher.close();
  }
}
