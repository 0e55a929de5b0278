/**
 * Closing a connection without losing what was written to it.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any

/**
 * nsqjs's connection (with the write queue's `flushWrites`) closing in
 * order: what was written goes out before the socket ends (nsqjs
 * destroys the socket right after queueing CLS), a socket not open yet is
 * destroyed once it is, and nsqjs's IDENTIFY timer does not outlive the
 * connection.
 */
export function withOrderlyEnd(base: any): any {
  return class extends base {
    constructor(...args: unknown[]) {
      super(...args);
      // nsqjs clears its 5 s IDENTIFY timer only when IDENTIFY is answered.
      this.on("closed", () => this.clearIdentifyTimeout());
    }

    endGracefully(timeoutMs: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          this.removeListener("closed", done);
          this.destroySoon();
          resolve();
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        this.once("closed", done);
        // Responses wait in our write queue for the next turn of the event loop:
        // write them now; `end()` then sends FIN only after the socket's buffer.
        try {
          this.flushWrites();
          this.outWriter.end();
        } catch {
          this.destroySoon();
        }
      });
    }

    /** nsqjs opens its socket a tick after `connect()`; before that there is nothing to destroy. */
    destroySoon(): void {
      if (this.conn) {
        this.statemachine.goto("CLOSED");
        this.destroy();
      } else {
        setTimeout(() => this.destroySoon(), 0);
      }
    }
  };
}
