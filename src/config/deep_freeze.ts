/**
 * Recursive `Object.freeze`, so a config cannot be changed by the code that
 * runs from it (a reload builds a new one instead).
 *
 * @module
 */

/**
 * Freezes `value` and everything reachable from it; returns `value`.
 *
 * @example
 * ```ts
 * const config = deepFreeze({ workers: [{ topic: "a" }] });
 * Object.isFrozen(config.workers[0]); // true
 * ```
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      deepFreeze((value as Record<PropertyKey, unknown>)[key]);
    }
  }
  return value;
}
