/**
 * The text of a thrown value for a log field or a one-line message: an
 * `Error`'s message, anything else as `String()` gives it. Unlike
 * `describeError` (the reason recorded in an outcome), it adds neither the
 * error's name nor JSON, and does not shorten.
 *
 * @module
 */

/**
 * The message of `error` if it is an `Error`, otherwise `String(error)`;
 * never throws, even for a value that refuses to become a string.
 *
 * @example
 * ```ts
 * import { errorText } from "./error_text.ts";
 *
 * errorText(new TypeError("boom")); // "boom"
 * errorText("refused"); // "refused"
 * ```
 */
export function errorText(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    // An object without a prototype, or with a throwing toString().
    return "(an error that cannot be turned into text)";
  }
}

/**
 * `error` if it is an `Error`, else an `Error` whose message is its
 * {@linkcode errorText}: for callbacks and promise rejections that take one.
 *
 * @example
 * ```ts
 * import { asError } from "./error_text.ts";
 *
 * asError("refused").message; // "refused"
 * ```
 */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorText(error));
}
