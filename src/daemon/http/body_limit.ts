/**
 * The body limit of the actions and the page's sign-in. It is checked before
 * the token, so that it holds for a caller without the token too.
 *
 * Hono's `bodyLimit` is not used: over the limit it leaves a chunked body's
 * reader neither read nor cancelled, so the server holds the connection
 * while the client, blocked writing the rest, waits for it forever (a
 * 10 MiB chunked body to a pause endpoint hung for minutes).
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { json } from "./response.ts";

/**
 * Pause, resume, replay and sign-in take at most a small body; a longer one
 * is refused, so that a client cannot make the daemon read or hold a large
 * body.
 */
export const MAX_CONTROL_BODY_BYTES = 4096;

/**
 * A 413 when the body is over {@linkcode MAX_CONTROL_BODY_BYTES}: by its
 * Content-Length before reading any of it, or (chunked) once that much was
 * read, the rest left unread and the stream cancelled. A chunked body within
 * the limit is handed on as the bytes read.
 */
export function limitBody(): MiddlewareHandler {
  return async (c, next) => {
    const request = c.req.raw;
    const refuse = (found: string) =>
      json(413, {
        error: `the body of ${request.method} ${c.req.path} must be at most ` +
          `${MAX_CONTROL_BODY_BYTES} bytes: ${found}`,
      });
    const length = request.headers.get("Content-Length");
    if (length !== null) {
      return Number(length) > MAX_CONTROL_BODY_BYTES
        ? refuse(`Content-Length is ${length}`)
        : await next();
    }
    if (request.body === null) return await next();
    const reader = request.body.getReader();
    const chunks: Uint8Array[] = [];
    let read = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        read += value.length;
        if (read > MAX_CONTROL_BODY_BYTES) return refuse(`${read} bytes read so far`);
        chunks.push(value);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    const body = new Uint8Array(read);
    let at = 0;
    for (const chunk of chunks) {
      body.set(chunk, at);
      at += chunk.length;
    }
    c.req.raw = new Request(request, { body });
    return await next();
  };
}
