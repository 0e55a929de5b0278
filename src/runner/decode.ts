/**
 * Turns a raw message body into the handler's `body`, as the worker's
 * `decode` says.
 *
 * @module
 */

import type { Decode } from "../worker/worker.ts";
import { describeError } from "../error_text.ts";

/**
 * Thrown by {@linkcode decodeBody} when a body cannot be decoded; the message
 * is dead-lettered with reason `"decode"` and this error's message.
 */
export class DecodeError extends Error {
  /** Creates a DecodeError; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DecodeError";
  }
}

/** Fatal: a body with invalid UTF-8 is an error, not a string with U+FFFD in it. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes `bytes` with `decode`: `"json"` (the default: strict UTF-8, then
 * `JSON.parse`), `"text"` (strict UTF-8), `"bytes"` (as is) or a function.
 *
 * @throws {DecodeError} with a message that says what is wrong with the body
 * ("body is not valid UTF-8", "body is not JSON: Unexpected token …", "body
 * is empty (expected JSON)"), or what the decode function threw.
 *
 * @example
 * ```ts
 * import { decodeBody } from "./decode.ts";
 *
 * decodeBody(undefined, new TextEncoder().encode('{"clicks":3}')); // { clicks: 3 }
 * decodeBody("text", new TextEncoder().encode("hello")); // "hello"
 * ```
 */
export function decodeBody(decode: Decode | undefined, bytes: Uint8Array): unknown {
  switch (decode) {
    case undefined:
    case "json":
      return parseJson(bytes);
    case "text":
      return decodeUtf8(bytes);
    case "bytes":
      return bytes;
    default:
      if (typeof decode !== "function") {
        throw new DecodeError(
          `decode must be "json", "text", "bytes" or a function, got ${String(decode)}`,
        );
      }
      try {
        return decode(bytes);
      } catch (error) {
        throw new DecodeError(`decode function threw: ${describeError(error)}`, { cause: error });
      }
  }
}

function parseJson(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new DecodeError("body is empty (expected JSON)");
  const text = decodeUtf8(bytes);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DecodeError(`body is not JSON: ${(error as SyntaxError).message}`, { cause: error });
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (error) {
    throw new DecodeError("body is not valid UTF-8", { cause: error });
  }
}
