/**
 * Replacing one handler of nsqjs's connection state machine.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any

/** A handler of nsqjs's state machine, bound to its machine. */
export type StateHandler = (...args: any[]) => unknown;

/**
 * nsqjs's connection with the `event` handler of state `state` replaced by
 * what `wrap` makes of the original. Each connection's state machine holds
 * its own handlers (node-state binds a copy per machine), so the
 * replacement is per connection.
 */
export function withStateHandler(
  base: any,
  state: string,
  event: string,
  wrap: (original: StateHandler, connection: any) => StateHandler,
): any {
  return class extends base {
    constructor(...args: unknown[]) {
      super(...args);
      const handlers = this.statemachine.states[state];
      handlers[event] = wrap(handlers[event], this);
    }
  };
}
