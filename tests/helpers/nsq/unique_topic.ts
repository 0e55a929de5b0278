/**
 * Returns a fresh NSQ topic (or channel) name, `t_<prefix>_<random>`, at most
 * 64 characters. Characters NSQ does not allow in `prefix` become `_`.
 *
 * @example
 * ```ts
 * const topic = uniqueTopic("retry"); // "t_retry_3f9c0a1b2c4d"
 * ```
 */
export function uniqueTopic(prefix?: string): string {
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  if (prefix === undefined || prefix === "") return `t_${random}`;
  const room = 64 - "t__".length - random.length;
  const safe = prefix.replaceAll(/[^.a-zA-Z0-9_-]/g, "_").slice(0, room);
  return `t_${safe}_${random}`;
}
