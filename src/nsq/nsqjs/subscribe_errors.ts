/**
 * SUB's name check failing the connection instead of the process.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { asError } from "../../error_text.ts";
import { withStateHandler } from "./state_handler.ts";

/**
 * nsqjs's consumer connection closing on an invalid topic or channel name:
 * nsqjs checks them as it sends SUB and throws inside the socket's data
 * handler, which would crash the process.
 */
export function withSubscribeErrors(base: any): any {
  return withStateHandler(base, "SUBSCRIBE", "Enter", (subscribe, connection) => () => {
    try {
      subscribe();
    } catch (error) {
      connection.statemachine.goto("ERROR", asError(error));
    }
  });
}
