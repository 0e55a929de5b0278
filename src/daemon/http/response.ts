/**
 * The answers of the HTTP surface: never cached by a client or proxy, since
 * every figure changes; errors as `{"error": "…"}`.
 *
 * @module
 */

/** The content type of every JSON answer. */
export const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON answer: `body` stringified. */
export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return text(status, JSON.stringify(body), JSON_TYPE, headers);
}

/** An answer with `body` as it is, of content type `type`. */
export function text(
  status: number,
  body: string,
  type: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": type, "Cache-Control": "no-store", ...headers },
  });
}
