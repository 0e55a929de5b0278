/**
 * The child's side of the pipe to the daemon: frames are built as they
 * come and a turn's frames leave in one write.
 *
 * @module
 */

import { FrameWriter } from "./frames.ts";

/** The frames a child writes to the daemon. */
export class ChildOutbox {
  readonly #out = new FrameWriter();
  readonly #write: (bytes: Uint8Array) => void;
  #flushQueued = false;

  /** `write` writes bytes to the daemon, whole, before it returns. */
  constructor(write: (bytes: Uint8Array) => void) {
    this.#write = write;
  }

  /** Starts a frame of `type`; its fields follow, and {@linkcode end} closes it. */
  begin(type: number): FrameWriter {
    return this.#out.start(type);
  }

  /** Closes the frame and sends it with the others of this turn. */
  end(): void {
    this.#out.end();
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  /** Writes what was built now (before the process ends). */
  flush(): void {
    this.#flushQueued = false;
    if (this.#out.pending > 0) this.#write(this.#out.take());
  }
}
