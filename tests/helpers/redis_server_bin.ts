/**
 * Finds the redis-server binary the redis harness runs.
 *
 * @module
 */

/**
 * The redis-server binary: `REDIS_SERVER_BIN`, else `redis-server` on PATH.
 *
 * @throws {Error} with install instructions when there is none.
 */
export async function redisServerBin(): Promise<string> {
  const fromEnv = Deno.env.get("REDIS_SERVER_BIN");
  if (fromEnv) return fromEnv;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = `${dir}/redis-server`;
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // Not in this directory.
    }
  }
  throw new Error(
    "Cannot find redis-server: install it (Debian/Ubuntu: apt-get install redis-server) " +
      "or set REDIS_SERVER_BIN to its path",
  );
}
