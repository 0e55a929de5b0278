/**
 * One turn's calls to a Redis Cluster, grouped by the slot of their key: a
 * script may only touch keys of one slot, so each group is one script call.
 *
 * @module
 */

import { clusterSlot } from "./cluster_slot.ts";

/**
 * `calls` grouped by the cluster slot of their `key`: the groups in the
 * order their first call came, each group's calls in their order.
 *
 * @example
 * ```ts
 * import { groupBySlot } from "./group_by_slot.ts";
 *
 * groupBySlot([{ key: "{a}1" }, { key: "b" }, { key: "{a}2" }]);
 * // [[{ key: "{a}1" }, { key: "{a}2" }], [{ key: "b" }]]
 * ```
 */
export function groupBySlot<T extends { readonly key: string }>(calls: readonly T[]): T[][] {
  const bySlot = new Map<number, T[]>();
  for (const call of calls) {
    const slot = clusterSlot(call.key);
    const group = bySlot.get(slot);
    if (group === undefined) bySlot.set(slot, [call]);
    else group.push(call);
  }
  return [...bySlot.values()];
}
