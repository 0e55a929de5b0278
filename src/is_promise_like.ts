/**
 * Whether a value a worker or a schema returned must be awaited.
 *
 * @module
 */

/**
 * Whether `value` is a thenable, as `await` sees it: an object or function
 * with a `then` method.
 *
 * @example
 * ```ts
 * import { isPromiseLike } from "./is_promise_like.ts";
 *
 * isPromiseLike(Promise.resolve(1)); // true
 * isPromiseLike({ then() {} }); // true
 * isPromiseLike(1); // false
 * ```
 */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}
