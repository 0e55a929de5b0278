/**
 * Thrown by a handler to say that retrying cannot help: the message goes
 * straight to the dead letter topic instead of being requeued.
 *
 * @example
 * ```ts
 * import { defineWorker, PermanentError } from "../../src/mod.ts";
 *
 * export default defineWorker({
 *   handle(body: { user?: string }) {
 *     if (!body.user) throw new PermanentError("event has no user");
 *   },
 * });
 * ```
 */
export class PermanentError extends Error {
  /** Creates a PermanentError; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermanentError";
  }
}
