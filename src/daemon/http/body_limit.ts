/**
 * The body limit of pause and resume. It is checked before the token, so
 * that it holds for a caller without the token too.
 *
 * @module
 */

import { json } from "./response.ts";

/**
 * Pause and resume take no body; a longer one than this is refused, so that
 * a client cannot make the daemon read or hold a large body.
 */
export const MAX_CONTROL_BODY_BYTES = 4096;

/**
 * A 413 when the body is over {@linkcode MAX_CONTROL_BODY_BYTES}: by its
 * Content-Length before reading any of it, or (chunked) once that much was
 * read, the rest left unread. Null when the request may go on.
 */
export async function refuseLargeBody(request: Request, path: string): Promise<Response | null> {
  const refuse = (found: string) =>
    json(413, {
      error:
        `the body of POST ${path} must be at most ${MAX_CONTROL_BODY_BYTES} bytes (it takes none): ${found}`,
    });
  const length = request.headers.get("Content-Length");
  if (length !== null) {
    return Number(length) > MAX_CONTROL_BODY_BYTES ? refuse(`Content-Length is ${length}`) : null;
  }
  if (request.body === null) return null;
  const reader = request.body.getReader();
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return null;
      read += value.length;
      if (read > MAX_CONTROL_BODY_BYTES) return refuse(`${read} bytes read so far`);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
