/**
 * Free loopback ports, for servers that cannot be asked to pick their own
 * (redis: port 0 disables TCP; Jaeger and Toxiproxy take fixed addresses).
 *
 * @module
 */

const HOST = "127.0.0.1";

/** A port nothing listens on right now (redis cannot be asked to pick one: port 0 disables TCP). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Ports nothing listens on right now, all different (Jaeger cannot be asked to pick them). */
export function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: HOST, port: 0 }));
  const ports = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}
