/**
 * What draining a consumer connection needs of nsqjs.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import type { Buffer } from "node:buffer";
import { type StateHandler, withStateHandler } from "./state_handler.ts";

/**
 * nsqjs's consumer connection with CLS (`requestClose()`), and its answer
 * CLOSE_WAIT (after which nsqd sends no more messages) as the event
 * `close_wait`: nsqjs ignores it.
 */
export function withDrain(base: any): any {
  return class extends withStateHandler(base, "READY_RECV", "response", hearCloseWait) {
    requestClose(): void {
      this.write("CLS\n");
    }
  };
}

/** READY_RECV's answer handler, with CLOSE_WAIT emitted as `close_wait`. */
function hearCloseWait(onResponse: StateHandler, connection: any): StateHandler {
  return (data: Buffer) => {
    if (data.length === 10 && data.toString() === "CLOSE_WAIT") connection.emit("close_wait");
    else onResponse(data);
  };
}
