/**
 * The page's session: after the token was given once (`POST /login`), an
 * HttpOnly, SameSite=Strict cookie lets the page read the figures (and
 * server-sent events, which carry no header) without the token in a URL.
 * The cookie holds a digest of the token, never the token: it opens the
 * page's reads only, while actions still need the token in a header.
 *
 * @module
 */

import { sameSecret } from "./bearer_auth.ts";

/** The cookie's name. */
export const SESSION_COOKIE = "nsqworker_session";

const encoder = new TextEncoder();

/** The cookie's value for `token`: changing the token ends every session. */
export async function sessionValue(token: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    encoder.encode(`nsqworker page session\n${token}`),
  );
  return new Uint8Array(digest).toHex();
}

/** The `Set-Cookie` header that opens a session. */
export function sessionCookie(value: string): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict`;
}

/** The `Set-Cookie` header that ends it. */
export function endSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** Whether the request's `Cookie` header holds the session of `expected`. */
export async function hasSession(cookieHeader: string | null, expected: string): Promise<boolean> {
  if (cookieHeader === null) return false;
  for (const part of cookieHeader.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === SESSION_COOKIE && (await sameSecret(rest.join("="), expected))) return true;
  }
  return false;
}
