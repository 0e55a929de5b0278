/**
 * The bearer token that pause and resume need, compared in constant time so
 * that the time of a refusal tells a guesser nothing.
 *
 * @module
 */

import { json } from "./response.ts";

const REALM = 'Bearer realm="nsqworker"';

/** Null when the request may go on; otherwise the refusal. */
export async function authorize(
  token: string | null,
  header: string | null,
): Promise<Response | null> {
  if (token === null) {
    return json(403, {
      error: "pause and resume are disabled: set http.token in the config to enable them",
    });
  }
  const given = header?.match(/^Bearer +(.+)$/i)?.[1]?.trim();
  if (given === undefined || given === "") {
    return json(401, { error: "pause and resume need the header Authorization: Bearer <token>" }, {
      "WWW-Authenticate": REALM,
    });
  }
  if (!(await sameSecret(given, token))) {
    return json(401, { error: "the bearer token is not the configured http.token" }, {
      "WWW-Authenticate": `${REALM}, error="invalid_token"`,
    });
  }
  return null;
}

const encoder = new TextEncoder();

/**
 * Compares two secrets in constant time: both are hashed first, so neither
 * their length nor the position of the first difference shows in the time
 * taken, and the digests are compared without an early exit.
 *
 * @example
 * ```ts
 * import { sameSecret } from "./bearer_auth.ts";
 *
 * await sameSecret("s3cret", "s3cret"); // true
 * ```
 */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let difference = 0;
  for (let i = 0; i < x.length; i++) difference |= x[i]! ^ y[i]!;
  return difference === 0;
}
