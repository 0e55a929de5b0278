/**
 * Network addresses in config.yaml: `host:port` pairs and nsqlookupd HTTP
 * base URLs.
 *
 * @module
 */

import type { HostPort } from "./types.ts";

const BRACKETED = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/;
const HOST_PORT = /^([a-zA-Z0-9_.-]+):(\d{1,5})$/;

/**
 * Parses `host:port` (`[::1]:4150` for IPv6; the host is returned without
 * brackets). Returns null when malformed or the port is out of range; port 0
 * is accepted only with `allowPortZero` (let the system pick one).
 *
 * @example
 * ```ts
 * parseHostPort("127.0.0.1:4150"); // { host: "127.0.0.1", port: 4150 }
 * parseHostPort("[::1]:4150"); // { host: "::1", port: 4150 }
 * ```
 */
export function parseHostPort(text: string, allowPortZero = false): HostPort | null {
  const match = BRACKETED.exec(text) ?? HOST_PORT.exec(text);
  if (match === null) return null;
  const [, host = "", digits = ""] = match;
  const port = Number(digits);
  if (port > 65535 || (port === 0 && !allowPortZero)) return null;
  return { host, port };
}

/**
 * Writes a host and port back as `host:port`, bracketing IPv6 hosts.
 *
 * @example
 * ```ts
 * formatHostPort({ host: "::1", port: 4150 }); // "[::1]:4150"
 * ```
 */
export function formatHostPort(address: HostPort): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/**
 * Normalizes an nsqlookupd address to a base URL without trailing slash:
 * `http(s)://host[:port]` as given, or bare `host:port` taken as http.
 * Returns null when it is neither (paths, queries and credentials are
 * refused: nsqlookupd serves from the root).
 *
 * @example
 * ```ts
 * normalizeLookupdAddress("127.0.0.1:4161"); // "http://127.0.0.1:4161"
 * normalizeLookupdAddress("https://lookupd.example:4161/"); // "https://lookupd.example:4161"
 * ```
 */
export function normalizeLookupdAddress(text: string): string | null {
  if (!/^https?:\/\//i.test(text)) {
    const bare = parseHostPort(text);
    return bare === null ? null : `http://${formatHostPort(bare)}`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const plain = url.pathname === "/" && url.search === "" && url.hash === "" &&
    url.username === "" && url.password === "" && url.hostname !== "";
  // URL accepts port 0, which nothing listens on.
  return plain && url.port !== "0" ? `${url.protocol}//${url.host}` : null;
}

/**
 * Whether a listen host only accepts local connections: `localhost`,
 * 127.0.0.0/8 or `::1`.
 */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  const octets = host.split(".");
  return octets.length === 4 && octets[0] === "127" &&
    octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
}
