/**
 * The order leases of `key_concurrency` in redis, for the processes of an
 * entry that share a redis dedupe store.
 *
 * @module
 */

import { ClaimTokens } from "./claim_token.ts";
import type { KeyLease, KeyLeases } from "./key_lease.ts";
import {
  evalScript,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
  type Script,
  script,
  type SendCommand,
} from "./redis_scripts.ts";
import type { SharedRedis } from "./shared_redis.ts";

/**
 * How long an order lease lasts unless renewed (its holder renews it every
 * third of that): the longest a key stays busy after its holder died.
 */
export const ORDER_LEASE_MS = 5_000;

/**
 * Takes the first free place of KEYS (the N places of one key), each
 * `SET place token NX PX lease`: ARGV token, lease (ms) → the place's index
 * from 1, or 0 when every place is held.
 */
const ACQUIRE_SCRIPT: Script = script(`
for i, place in ipairs(KEYS) do
  if redis.call('SET', place, ARGV[1], 'NX', 'PX', ARGV[2]) then return i end
end
return 0`);

/**
 * {@linkcode KeyLeases} in redis: the N places of a key are the keys
 * `<prefix>{<scope>:<key>}:<i>` (one hash slot, for a cluster), each held
 * by `SET … NX PX` with a token, renewed by compare-and-extend and released
 * by compare-and-delete, so that a holder whose lease lapsed cannot free a
 * place another has taken since. With one place it is a plain `SET`.
 *
 * @example
 * ```ts
 * import { RedisKeyLeases } from "./redis_lease.ts";
 * import type { SharedRedis } from "./shared_redis.ts";
 *
 * declare const redis: SharedRedis;
 * const leases = new RedisKeyLeases(redis, "orders/ship");
 * const lease = await leases.acquire("order-42", 1);
 * if (lease !== null) await leases.release(lease);
 * ```
 */
export class RedisKeyLeases implements KeyLeases {
  readonly leaseMs: number;
  readonly #send: SendCommand;
  readonly #prefix: string;
  readonly #lease: string;
  readonly #tokens = new ClaimTokens();

  /** `scope`: the entry's `<topic>/<channel>`; `leaseMs` for tests, default {@linkcode ORDER_LEASE_MS}. */
  constructor(redis: SharedRedis, scope: string, leaseMs = ORDER_LEASE_MS) {
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 3) {
      throw new RangeError(
        `Cannot create order leases as 'leaseMs' must be an integer of at least 3: current value is ${leaseMs}`,
      );
    }
    this.#send = (firstKey, args) => redis.send(firstKey, args);
    this.#prefix = `nsqworker:order:{${scope}:`;
    this.leaseMs = leaseMs;
    this.#lease = String(leaseMs);
  }

  async acquire(key: string, limit: number): Promise<KeyLease | null> {
    const token = this.#tokens.next();
    const base = this.#prefix + key + "}:";
    if (limit === 1) {
      const place = base + "0";
      const set = await this.#send(place, ["SET", place, token, "NX", "PX", this.#lease]);
      return set === null ? null : { place, token };
    }
    const places = Array.from({ length: limit }, (_, i) => base + i);
    const taken = await evalScript(this.#send, ACQUIRE_SCRIPT, places, [token, this.#lease]);
    return typeof taken === "number" && taken > 0 ? { place: places[taken - 1]!, token } : null;
  }

  async renew(lease: KeyLease): Promise<boolean> {
    const { place, token } = lease;
    return await evalScript(this.#send, RENEW_SCRIPT, [place], [token, this.#lease]) === 1;
  }

  async release(lease: KeyLease): Promise<void> {
    await evalScript(this.#send, RELEASE_SCRIPT, [lease.place], [lease.token]);
  }
}
