/**
 * The ids of the trace a delivery without a `traceparent` starts, when the
 * daemon must know them without a span of Deno's to draw them: to decide a
 * ratio sampler on them, and to hand them on unsampled.
 *
 * @module
 */

/** Ids of a trace and of the span (or place) in it that a `traceparent` names. */
export interface TraceIds {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
}

/** Drawn once per process: ids look random across deliveries and processes. */
const KEY = crypto.getRandomValues(new Uint32Array(6));
const lanes = new Uint32Array(6);

/**
 * The ids of the new trace of one delivery: mixed from its `scope` (the
 * entry and the nsqd, see `TaskMessage.idScope`) and message `id` under a
 * key drawn at start. Every look at the same delivery (what it publishes,
 * its dead letter, its batch's link, and a later attempt of the message)
 * so finds the same trace without the daemon keeping anything per message.
 *
 * @example
 * ```ts
 * import { deliveryTraceIds } from "./trace_ids.ts";
 *
 * const ids = deliveryTraceIds("pageviews/counter@127.0.0.1:4150", "0a1b2c3d4e5f6789");
 * ids.traceId === deliveryTraceIds("pageviews/counter@127.0.0.1:4150", "0a1b2c3d4e5f6789").traceId; // true
 * ```
 */
export function deliveryTraceIds(scope: string, id: string): TraceIds {
  const seed = scopeSeed(scope);
  for (let lane = 0; lane < lanes.length; lane++) {
    let h = KEY[lane]! ^ seed;
    for (let i = 0; i < id.length; i += 2) {
      h = mix(h, (id.charCodeAt(i) << 16) | (id.charCodeAt(i + 1) & 0xffff));
    }
    lanes[lane] = finish(h ^ id.length ^ (lane << 24));
  }
  // All zero is invalid; at 2^-128 and 2^-64 that is a formality.
  if ((lanes[0]! | lanes[1]! | lanes[2]! | lanes[3]!) === 0) lanes[3] = 1;
  if ((lanes[4]! | lanes[5]!) === 0) lanes[5] = 1;
  return {
    traceId: hex(lanes[0]!) + hex(lanes[1]!) + hex(lanes[2]!) + hex(lanes[3]!),
    spanId: hex(lanes[4]!) + hex(lanes[5]!),
  };
}

/** Scopes are one per entry and nsqd: each is mixed once. */
const seeds = new Map<string, number>();

function scopeSeed(scope: string): number {
  let seed = seeds.get(scope);
  if (seed === undefined) {
    let h = 0x9747b28c;
    for (let i = 0; i < scope.length; i++) h = mix(h, scope.charCodeAt(i));
    seed = finish(h ^ scope.length);
    seeds.set(scope, seed);
  }
  return seed;
}

// MurmurHash3's block step and finalizer, 32-bit.
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hex(word: number): string {
  return word.toString(16).padStart(8, "0");
}
