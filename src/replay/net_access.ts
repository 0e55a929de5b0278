/**
 * Net access to each address a replay run reaches, checked before its first
 * use: a permission that is missing is then one line naming it, not a
 * connection lost deep inside a pass.
 *
 * @module
 */

/** Net access to `target` (`host:port`) is not granted. */
export class MissingPermissionError extends Error {
  /** `flag` grants it, e.g. `--allow-net`; `target` is what it was needed for. */
  constructor(readonly flag: string, readonly target: string) {
    super(`missing permission ${flag} (to reach ${target})`);
    this.name = "MissingPermissionError";
  }
}

/**
 * Throws {@linkcode MissingPermissionError} for the first of `hosts`
 * (`host:port`) that net access is not granted to. Only queries: nothing prompts.
 *
 * @example
 * ```ts
 * requireNetAccess(["127.0.0.1:4161"]);
 * ```
 */
export function requireNetAccess(hosts: Iterable<string>): void {
  for (const host of hosts) {
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      throw new MissingPermissionError("--allow-net", host);
    }
  }
}

/**
 * `host:port` of an HTTP base URL, the port written out as Deno's net
 * permission wants it.
 *
 * @example
 * ```ts
 * urlHostPort("http://127.0.0.1:4161"); // "127.0.0.1:4161"
 * ```
 */
export function urlHostPort(url: string): string {
  const { hostname, port, protocol } = new URL(url);
  return `${hostname}:${port || (protocol === "https:" ? 443 : 80)}`;
}
