/**
 * Saying that a connection ended for its idle timeout.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any

/**
 * nsqjs's connection emitting `idle_timeout` (with the timeout in seconds)
 * when the socket saw no data for the idle timeout, just before nsqjs
 * closes the connection for it like any other end, without a reason: on a
 * half-open link this is the only sign of the loss.
 */
export function withIdleReason(base: any): any {
  return class extends base {
    registerStreamListeners(conn: any): void {
      // Registered before nsqjs's own timeout listener, which closes the connection.
      conn.on("timeout", () => this.emit("idle_timeout", this.config.idleTimeout));
      super.registerStreamListeners(conn);
    }
  };
}
