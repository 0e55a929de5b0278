/**
 * The edge of the HTTP surface: the handler behind `Deno.serve`. Only the
 * daemon's composition root (and tests) start one.
 *
 * @module
 */

import type { HostPort } from "../../config/types.ts";
import { formatHostPort } from "../../config/address.ts";
import type { Handler } from "./handler.ts";
import { errorText } from "../../error_text.ts";

/** A listening HTTP server. */
export interface HttpServer extends AsyncDisposable {
  /** Where it listens; the real port when `http.listen` asked for port 0. */
  readonly address: HostPort;
  /** `host:port`, IPv6 hosts in brackets. */
  readonly addressText: string;
  /** Stops accepting, lets requests under way finish, closes the connections. Safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Listens on `listen` and serves `handler`.
 *
 * @throws {Error} naming the address when it cannot listen (address in use, no permission).
 *
 * @example
 * ```ts
 * import { startHttpServer } from "./server.ts";
 *
 * await using server = startHttpServer(() => Promise.resolve(new Response("OK")), {
 *   host: "127.0.0.1",
 *   port: 0,
 * });
 * await (await fetch(`http://${server.addressText}/`)).text(); // "OK"
 * ```
 */
export function startHttpServer(handler: Handler, listen: HostPort): HttpServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: listen.host,
      port: listen.port,
      // Deno's default prints "Listening on …" to stdout, which is for JSON log lines only.
      onListen: () => {},
      handler,
    });
  } catch (error) {
    const reason = errorText(error);
    throw new Error(
      `cannot listen on ${formatHostPort(listen)} (http.listen): ${reason}`,
      { cause: error },
    );
  }
  const address = { host: server.addr.hostname, port: server.addr.port };
  let stopping: Promise<void> | null = null;
  const shutdown = () => stopping ??= server.shutdown();
  return {
    address,
    addressText: formatHostPort(address),
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
