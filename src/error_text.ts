/**
 * Turning a thrown value into text, in two forms: {@linkcode errorText} for
 * a log field or a one-line message (the message alone), and
 * {@linkcode describeError} for the reason recorded in an outcome (with the
 * error's name, or JSON, and cut to {@linkcode MAX_ERROR_LENGTH}). Neither
 * ever throws.
 *
 * @module
 */

/** What a value that refuses to become text is shown as. */
const UNPRINTABLE = "(an error that cannot be turned into text)";

/** The longest `error` of an outcome: it goes into log lines and dead letters. */
export const MAX_ERROR_LENGTH = 1000;

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
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    // An object without a prototype, or with a throwing toString().
    return UNPRINTABLE;
  }
}

/**
 * A short description of a thrown value for an outcome's `error`: its
 * {@linkcode errorText}, prefixed with the name of an `Error` other than a
 * plain one, or the JSON of an object that is not an `Error`; cut at
 * {@linkcode MAX_ERROR_LENGTH}. It never throws, whatever was thrown.
 *
 * @example
 * ```ts
 * import { describeError } from "./error_text.ts";
 *
 * describeError(new Error("boom")); // "boom"
 * describeError(new TypeError("x is undefined")); // "TypeError: x is undefined"
 * describeError({ code: 42 }); // '{"code":42}'
 * ```
 */
export function describeError(error: unknown): string {
  let text: string;
  try {
    if (error instanceof Error) {
      const message = errorText(error);
      const name = String(error.name);
      if (name === "Error" || name === "") text = message || "Error";
      else text = message ? `${name}: ${message}` : name;
    } else if (typeof error === "object" && error !== null) {
      text = toJson(error) ?? errorText(error);
    } else {
      text = errorText(error);
    }
  } catch {
    // A name that refuses to become a string.
    text = UNPRINTABLE;
  }
  return truncate(text);
}

function toJson(value: object): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined; // a cycle or a BigInt: String() will do
  }
}

/** Cuts `text` to {@linkcode MAX_ERROR_LENGTH} characters, marking the cut. */
export function truncate(text: string): string {
  return text.length <= MAX_ERROR_LENGTH ? text : text.slice(0, MAX_ERROR_LENGTH - 1) + "…";
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
