/**
 * The RDY plan of one consumer: which share of `max_in_flight` each nsqd
 * connection is meant to have, and how much of it can be sent now without
 * the messages in flight ever exceeding `max_in_flight`.
 *
 * With at least one slot per connection the slots are split evenly
 * ({@linkcode allocateRdy}). With fewer slots than connections they are
 * scarce, and they move: a connection keeps its slot while messages keep
 * arriving on it, for at most a time slice, and gives it up as soon as it
 * has been idle a moment; the freed slots go to the connections that have
 * waited longest without one. So every nsqd is served within about a second,
 * whatever the number of nsqd, and an nsqd with a backlog is not left for a
 * fixed period while idle ones hold the slots.
 *
 * @module
 */

import { allocateRdy } from "./rdy.ts";

/** A connection as the planner sees it; times are in ms on one clock. */
export interface PlannedConnection {
  /** The largest RDY this nsqd accepts (from IDENTIFY). */
  readonly maxRdyCount: number;
  /** The RDY count last sent. */
  readonly rdy: number;
  /** Messages delivered on this connection and not yet answered. */
  readonly inFlight: number;
  /** When its RDY last went from 0 to more. */
  readonly grantedAt: number;
  /** When its RDY last went to 0 (or it became ready with none). */
  readonly releasedAt: number;
  /** When a message was last seen arriving on it. */
  readonly activeAt: number;
  /**
   * The RDY it had when it was last lowered while it could still send
   * (RDY above its in flight), and when: until nsqd has read the lower
   * value it may still send up to the old one.
   */
  readonly loweredFrom?: number;
  readonly loweredAt?: number;
  /**
   * A FIN or REQ of this connection goes out right after the new RDY:
   * nsqd still counts that message in flight when it reads the RDY.
   */
  readonly answering?: boolean;
}

/** What the planner needs. */
export interface RdyPlanInput {
  /** The RDY that may be given out in all (0 while paused or draining). */
  readonly total: number;
  /** The ready connections, in a stable order. */
  readonly connections: readonly PlannedConnection[];
  /** Messages still being handled from connections that are gone. */
  readonly inFlightElsewhere: number;
  readonly now: number;
  /** How long a connection may keep a scarce slot while messages keep coming. */
  readonly sliceMs: number;
  /** A scarce slot's holder that has seen no message this long gives it up. */
  readonly idleMs: number;
  /**
   * How long a lowered RDY still counts at its old value: the time nsqd may
   * take to read it. Default 0 (lowering counts at once).
   */
  readonly lowerGraceMs?: number;
}

/** The planner's answer, one value per connection in input order. */
export interface RdyPlan {
  /** The share each connection is meant to have. */
  readonly targets: readonly number[];
  /** The RDY to send now: lowered at once, raised only from what is free. */
  readonly rdy: readonly number[];
  /** Some connection is below its target: plan again when a message is answered. */
  readonly short: boolean;
  /** When the scarce slots should be looked at again; null when they need not. */
  readonly nextAt: number | null;
}

/**
 * The time slice of a scarce slot for `total` slots over `connections`: short
 * enough that a full round of every connection takes about a second.
 */
export function scarceSliceMs(total: number, connections: number): number {
  if (connections <= 0) return 1_000;
  return Math.min(1_000, Math.max(20, Math.round((1_000 * total) / connections)));
}

/**
 * Plans every connection's RDY. nsqd keeps sending on a connection while its
 * in-flight count is below its RDY, and lowering RDY does not recall what was
 * sent, so a raise is granted only from what the other connections (and
 * those already gone) leave free. What cannot be granted now is granted as
 * messages are answered (`short`).
 *
 * @example
 * ```ts
 * import { planRdy } from "./rdy_planner.ts";
 *
 * const idle = { maxRdyCount: 2500, rdy: 0, inFlight: 0, grantedAt: 0, releasedAt: 0, activeAt: 0 };
 * const plan = planRdy({
 *   total: 1,
 *   connections: [idle, { ...idle, releasedAt: -50 }],
 *   inFlightElsewhere: 0,
 *   now: 1_000,
 *   sliceMs: 500,
 *   idleMs: 100,
 * });
 * plan.rdy; // [0, 1]: the slot goes to the connection that waited longest
 * ```
 */
export function planRdy(input: RdyPlanInput): RdyPlan {
  const { connections, now } = input;
  const n = connections.length;
  const total = Math.max(0, Math.floor(input.total) || 0);
  let targets: number[];
  let nextAt: number | null = null;
  /** Who is raised first when not every raise fits. */
  let order: readonly number[];
  if (total >= n) {
    targets = allocateRdy(total, connections);
    order = connections.map((_, i) => i);
  } else {
    ({ targets, nextAt, order } = scarce(total, input));
  }

  const rdy = connections.map((c, i) => Math.min(c.rdy, targets[i]!));
  const graceMs = input.lowerGraceMs ?? 0;
  // What nsqd may still send on each connection: a RDY lowered just now
  // (by this plan or a recent one) is not read by nsqd yet.
  let graceEnds = Infinity;
  const exposure = connections.map((c, i) => {
    let sendable = Math.max(rdy[i]!, c.inFlight);
    if (graceMs > 0 && rdy[i]! < c.rdy && c.rdy > c.inFlight + (c.answering ? 1 : 0)) {
      sendable = Math.max(sendable, c.rdy);
      graceEnds = Math.min(graceEnds, now + graceMs);
    }
    if (c.loweredAt !== undefined && now - c.loweredAt < graceMs) {
      sendable = Math.max(sendable, c.loweredFrom ?? 0);
      graceEnds = Math.min(graceEnds, c.loweredAt + graceMs);
    }
    return sendable;
  });
  let used = input.inFlightElsewhere;
  for (let i = 0; i < n; i++) used += exposure[i]!;
  let free = total - used;
  let short = false;
  for (const i of order) {
    const target = targets[i]!;
    const current = rdy[i]!;
    if (target <= current) continue;
    const held = exposure[i]!;
    const granted = Math.min(target, held + Math.max(0, free));
    if (granted > current) {
      rdy[i] = granted;
      free -= Math.max(granted, held) - held;
    }
    if (rdy[i]! < target) short = true;
  }
  // A raise held back only by a lowering nsqd may not have read yet is due when the grace ends.
  if (short && graceEnds !== Infinity) nextAt = Math.min(nextAt ?? Infinity, graceEnds);
  return { targets, rdy, short, nextAt };
}

/** One slot or none per connection: keep the busy holders, rotate the rest. */
function scarce(
  total: number,
  input: RdyPlanInput,
): { targets: number[]; nextAt: number | null; order: readonly number[] } {
  const { connections, now, sliceMs, idleMs } = input;
  const graceMs = input.lowerGraceMs ?? 0;
  const n = connections.length;
  const targets = new Array<number>(n).fill(0);
  if (total === 0) return { targets, nextAt: null, order: [] };

  const kept: number[] = [];
  const others: number[] = [];
  // A slot just taken from a connection is not handed straight back to it:
  // it would cost the connections waiting their turn (the grace of each new
  // lowering holds a slot).
  let graceEnds = Infinity;
  for (let i = 0; i < n; i++) {
    const c = connections[i]!;
    const held = c.rdy > 0 && c.maxRdyCount > 0;
    const inSlice = now - c.grantedAt < sliceMs;
    const busy = now - Math.max(c.grantedAt, c.activeAt) < idleMs;
    if (held && inSlice && busy) kept.push(i);
    else if (!held && c.loweredAt !== undefined && now - c.loweredAt < graceMs) {
      graceEnds = Math.min(graceEnds, c.loweredAt + graceMs);
    } else if (c.maxRdyCount > 0) others.push(i);
  }
  // A lowered total keeps the most recent grants: they have had the least time.
  kept.sort((a, b) => connections[b]!.grantedAt - connections[a]!.grantedAt);
  kept.length = Math.min(kept.length, total);
  // Longest without a slot first; holders whose turn is over go last.
  others.sort((a, b) => {
    const ca = connections[a]!;
    const cb = connections[b]!;
    const heldA = ca.rdy > 0 ? 1 : 0;
    const heldB = cb.rdy > 0 ? 1 : 0;
    if (heldA !== heldB) return heldA - heldB;
    return heldA === 1 ? ca.grantedAt - cb.grantedAt : ca.releasedAt - cb.releasedAt || a - b;
  });
  const chosen = [...kept, ...others.slice(0, total - kept.length)];
  // Slots left unused while their connections wait out the grace.
  let nextAt = chosen.length < total ? graceEnds : Infinity;

  for (const i of chosen) {
    targets[i] = 1;
    const c = connections[i]!;
    // A new grant starts its slice when it is sent, that is now.
    const grantedAt = c.rdy > 0 ? c.grantedAt : now;
    const activeAt = Math.max(grantedAt, c.activeAt);
    nextAt = Math.min(nextAt, grantedAt + sliceMs, activeAt + idleMs);
  }
  return {
    targets,
    nextAt: Number.isFinite(nextAt) ? Math.max(nextAt, now + 1) : null,
    // The holders kept first, then those that waited longest.
    order: chosen,
  };
}
