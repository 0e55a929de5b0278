/**
 * AUTH only when nsqd asks for it.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { withStateHandler } from "./state_handler.ts";

/**
 * nsqjs's connection sending AUTH only when IDENTIFY's answer requires it:
 * nsqjs sends it whenever a secret is set, and an nsqd without auth answers
 * E_AUTH_DISABLED and closes the connection.
 */
export function withAuthWhenRequired(base: any): any {
  return withStateHandler(base, "AUTH", "Enter", (authenticate, connection) => () => {
    const machine = connection.statemachine;
    return machine.identifyResponse?.auth_required
      ? authenticate()
      : machine.goto(machine.afterIdentify());
  });
}
