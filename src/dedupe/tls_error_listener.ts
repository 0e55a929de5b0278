/**
 * An `error` listener on each TLS socket of the redis client, from its
 * creation to its end.
 *
 * `@redis/client` listens for a socket's errors only at times: while it
 * waits for the handshake, then from the moment its code after that wait
 * runs. Between the two, a socket has no `error` listener, and an error
 * emitted then ends the process. Under Deno this happens with a server that
 * requires a client certificate (mutual TLS) and gets none: the server's
 * "certificate required" alert often arrives right after the handshake,
 * inside that gap. The client offers no way to make its sockets, so
 * `tls.connect` is wrapped: a call whose options carry
 * {@linkcode TLS_SOCKET_ERRORS} gets a listener for the socket's whole life,
 * which hands the error to that function; every other call is unchanged.
 *
 * @module
 */

import tls from "node:tls";

/** The key, in the client's socket options, of the function that hears every socket error. */
export const TLS_SOCKET_ERRORS: unique symbol = Symbol("nsqworker.redisTlsSocketErrors");

/** Called for each error of a socket; `heardByClient` tells whether the client listened too. */
export type TlsSocketErrors = (error: unknown, heardByClient: boolean) => void;

let wrapped = false;

/** Wraps `tls.connect` once per process (idempotent). */
export function listenToTlsSocketErrors(): void {
  if (wrapped) return;
  wrapped = true;
  const connect = tls.connect;
  const withListener = function (this: unknown, ...args: unknown[]): tls.TLSSocket {
    const socket = (connect as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
    const options = args[0];
    const onError = typeof options === "object" && options !== null
      ? (options as { [TLS_SOCKET_ERRORS]?: unknown })[TLS_SOCKET_ERRORS]
      : undefined;
    if (typeof onError === "function") {
      socket.on("error", (error: unknown) => {
        // Counted when emitted: this listener is one of them.
        (onError as TlsSocketErrors)(error, socket.listenerCount("error") > 1);
      });
    }
    return socket;
  };
  (tls as { connect: unknown }).connect = withListener;
}
