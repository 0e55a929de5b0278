/**
 * One socket write per turn of the event loop.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { Buffer } from "node:buffer";

/**
 * nsqjs's connection queueing what is written and writing it in one piece
 * once per turn of the event loop: a socket write per FIN was a fifth of
 * the per-message cost.
 */
export function withWriteQueue(base: any): any {
  return class extends base {
    write(data: Buffer | string): void {
      if (this.pendingWrites === undefined) {
        this.pendingWrites = [data];
        setImmediate(() => this.flushWrites());
      } else {
        this.pendingWrites.push(data);
      }
    }

    /** Writes what `write` queued (also before the socket is ended). */
    flushWrites(): void {
      const chunks: (Buffer | string)[] | undefined = this.pendingWrites;
      this.pendingWrites = undefined;
      const out = this.outWriter;
      if (chunks === undefined || !out || out.destroyed || out.writableEnded) return;
      // FIN/REQ/TOUCH come as text: one string, one Buffer, whatever their number.
      out.write(
        chunks.every((chunk) => typeof chunk === "string")
          ? Buffer.from(chunks.join(""))
          : Buffer.concat(
            chunks.map((chunk) => typeof chunk === "string" ? Buffer.from(chunk) : chunk),
          ),
      );
    }
  };
}
