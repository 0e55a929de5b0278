/**
 * The error of a handler (or check, or batch) whose process ended before it
 * settled.
 *
 * @module
 */

/**
 * The process running a message's worker code ended (it exited, crashed,
 * ran out of memory or was killed) before that code settled: the runner
 * requeues the message at once (`REQ 0`, counted as an attempt) rather than
 * leaving it to nsqd's message timeout.
 *
 * @example
 * ```ts
 * import { HandlerLost } from "./handler_lost.ts";
 *
 * new HandlerLost("the child process 4242 exited with code 1").message;
 * ```
 */
export class HandlerLost extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HandlerLost";
  }
}
