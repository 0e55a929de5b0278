/**
 * The Lua scripts of the redis dedupe store, and how they are run: by their
 * SHA1, sent whole again when redis has forgotten them.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** A Lua script, run by its SHA1 (EVALSHA) and sent whole only when redis does not have it. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

/** A {@linkcode Script} of `source`, with its SHA1. */
export function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * The claim for redis before 7.0, which refuses `SET … NX … GET`: KEYS[1] the
 * key, ARGV token, lease (ms), done mark → 1 claimed, 2 done, 0 busy.
 */
export const CLAIM_SCRIPT: Script = script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[3] then return 2 end
return 0`);
/** Compare-and-delete: only the claim's owner may release it. */
export const RELEASE_SCRIPT: Script = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);
/** Compare-and-extend: only the claim's owner may renew it. */
export const RENEW_SCRIPT: Script = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/**
 * The claims and done marks of one turn, in the order they were made:
 * KEYS the keys; ARGV[1] the done mark, ARGV[2] the ttl (ms), then for the
 * i-th key ARGV[1 + 2i] its claim token ("" for a done mark) and ARGV[2 + 2i]
 * its lease (ms) → per key 1 claimed, 2 done, 0 busy (0 for a done mark).
 */
export const BATCH_SCRIPT: Script = script(`
local mark, ttl, out = ARGV[1], ARGV[2], {}
for i, key in ipairs(KEYS) do
  local token = ARGV[1 + 2 * i]
  if token == '' then
    redis.call('SET', key, mark, 'PX', ttl)
    out[i] = 0
  elseif redis.call('SET', key, token, 'NX', 'PX', ARGV[2 + 2 * i]) then
    out[i] = 1
  elseif redis.call('GET', key) == mark then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out`);

/** Sends one command; a cluster routes it by `firstKey`. */
export type SendCommand = (firstKey: string, args: string[]) => Promise<unknown>;

/**
 * Runs `script` on `keys` and `args` by its SHA1; a restarted or flushed
 * redis answers NOSCRIPT, and then the script is sent whole (EVAL), which
 * also caches it again.
 *
 * @example
 * ```ts
 * import { evalScript, RELEASE_SCRIPT } from "./redis_scripts.ts";
 *
 * const send = (_firstKey: string, args: string[]) => Promise.resolve(args[0]);
 * await evalScript(send, RELEASE_SCRIPT, ["nsqworker:dedupe:pageviews/counter:event-1"], ["c1"]);
 * // "EVALSHA": redis had the script
 * ```
 */
export async function evalScript(
  send: SendCommand,
  script: Script,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const rest = [String(keys.length), ...keys, ...args];
  try {
    return await send(keys[0]!, ["EVALSHA", script.sha, ...rest]);
  } catch (error) {
    // A restarted or flushed redis forgot the script: EVAL sends it and caches it again.
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
    return await send(keys[0]!, ["EVAL", script.source, ...rest]);
  }
}
