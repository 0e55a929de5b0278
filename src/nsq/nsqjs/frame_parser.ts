/**
 * Cutting nsqd's frames out of socket reads.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { Buffer } from "node:buffer";

// The frame types of nsqd's protocol (V2).
const FRAME_TYPE_RESPONSE = 0;
const FRAME_TYPE_ERROR = 1;
const FRAME_TYPE_MESSAGE = 2;

/**
 * nsqjs's `receiveData`, frame for frame the same dispatch (a response to
 * the state machine, an error to ERROR, a message to `consumeMessage`), but
 * cut in one pass over each socket read: nsqjs concatenates every read onto
 * what is left and makes three Buffers and an array per frame. Here only a
 * frame split across reads is copied, once, and a frame costs one Buffer
 * (its payload). What follows the response that turns compression on goes
 * to the inflater (nsqjs hands it over from its frame buffer, which this
 * leaves empty).
 *
 * A message goes on as its raw payload: NsqMessage reads it and answers
 * through `write`, so nsqjs's Message (an EventEmitter, a timer and a tick
 * per message) is never made.
 */
export function withFrameParser(base: any): any {
  return class extends base {
    /** The start of a frame that the next read completes. */
    partialFrame: Buffer | undefined = undefined;

    receiveData(data: Buffer): void {
      this.lastReceivedTimestamp = Date.now();
      const bytes = this.partialFrame === undefined
        ? data
        : Buffer.concat([this.partialFrame, data]);
      this.partialFrame = undefined;
      const end = bytes.length;
      let at = 0;
      while (end - at >= 8) {
        // The size counts the frame type and the payload, not itself.
        const frameEnd = at + 4 + bytes.readInt32BE(at);
        if (frameEnd > end) break;
        const type = bytes.readInt32BE(at + 4);
        const payload = bytes.subarray(at + 8, frameEnd);
        at = frameEnd;
        switch (type) {
          case FRAME_TYPE_RESPONSE: {
            const inflater = this.inflater;
            this.statemachine.raise("response", payload);
            // IDENTIFY's answer turned compression on: what follows it is compressed.
            if (this.inflater !== inflater) {
              if (at < end) this.inflater.write(bytes.subarray(at));
              return;
            }
            break;
          }
          case FRAME_TYPE_ERROR:
            this.statemachine.goto("ERROR", new Error(payload.toString()));
            break;
          case FRAME_TYPE_MESSAGE:
            this.lastMessageTimestamp = this.lastReceivedTimestamp;
            this.statemachine.raise("consumeMessage", payload);
            break;
        }
      }
      if (at < end) this.partialFrame = bytes.subarray(at);
    }
  };
}
