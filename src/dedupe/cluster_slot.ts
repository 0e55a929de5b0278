/**
 * The Redis Cluster hash slot of a key, as the servers compute it, so that
 * the redis store can group one turn's keys by slot before it sends them:
 * a script may only touch keys of one slot.
 *
 * @module
 */

/** Slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

/** CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0) by byte, as a table. */
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

const encoder = new TextEncoder();

/**
 * The slot (0 to 16383) of `key`: the CRC16 of its hash tag (the text
 * between the first `{` and the next `}`, when not empty) or else of the
 * whole key, modulo 16384.
 *
 * @example
 * ```ts
 * import { clusterSlot } from "./cluster_slot.ts";
 *
 * clusterSlot("foo"); // 12182
 * clusterSlot("{user1}:a") === clusterSlot("{user1}:b"); // true
 * ```
 */
export function clusterSlot(key: string): number {
  let bytes = encoder.encode(key);
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % CLUSTER_SLOTS;
}
