/**
 * Hiding credentials in text that goes into a message or a log line.
 *
 * @module
 */

/**
 * `scheme://user:PASSWORD@`: a password ends at the last `@` of the
 * authority, which `/`, `?`, `#` or a space closes (a URL parser also takes
 * the last `@`, so a raw `@` in a password stays hidden).
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#]*@/gi;

/**
 * `text` with the password of every URL in it replaced by `***`, and every
 * one of `secrets` (as given, non-empty) too.
 *
 * @example
 * ```ts
 * import { redact } from "./redact.ts";
 *
 * redact("redis://app:s3cret@cache:6379/0"); // "redis://app:***@cache:6379/0"
 * redact("AUTH failed for s3cret", ["s3cret"]); // "AUTH failed for ***"
 * ```
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let clean = text.replace(URL_PASSWORD, "$1***@");
  for (const secret of secrets) if (secret !== "") clean = clean.replaceAll(secret, "***");
  return clean;
}
