/**
 * What listens at an address `deno task dev` is about to use: nothing, the
 * NSQ daemon expected there, or another program; and whether an NSQ daemon
 * answers on its HTTP port, once started. Each probe is one its target
 * takes quietly: nsqd is spoken to in its own protocol (a bare TCP
 * connection makes it log an error), nsqlookupd over HTTP, and a port dev
 * would give a daemon is tried by binding it, not by connecting.
 *
 * @module
 */

import type { HostPort } from "../src/config/types.ts";
import { producersIn } from "../src/nsq/lookupd.ts";

/** How long a listener is given to answer as an NSQ daemon. */
export const PROBE_TIMEOUT_MS = 1000;

const encoder = new TextEncoder();
/** The largest answer to IDENTIFY worth reading: a JSON object of a few settings. */
const MAX_FRAME = 64 * 1024;
const FRAME_RESPONSE = 0;
const FRAME_ERROR = 1;

/**
 * Whether `address` answers as nsqd: the V2 protocol magic and an IDENTIFY
 * get a response frame (`OK`) or an error frame (`E_…`). A refused
 * connection is "nothing"; anything else, or silence, is "other".
 *
 * @example
 * ```ts
 * if (await probeNsqd({ host: "127.0.0.1", port: 4150 }) === "nsqd") console.log("nsqd is up");
 * ```
 */
export async function probeNsqd(address: HostPort): Promise<"nothing" | "nsqd" | "other"> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: address.host, port: address.port });
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return "nothing";
    throw error;
  }
  let closed = false;
  const close = () => {
    if (!closed) conn.close();
    closed = true;
  };
  // Closing the connection ends a read that waits on a listener that never answers.
  const timer = setTimeout(close, PROBE_TIMEOUT_MS);
  try {
    await writeAll(conn, identify());
    const header = new DataView((await readExactly(conn, 8)).buffer);
    const size = header.getUint32(0);
    const type = header.getUint32(4);
    if (size < 4 || size > MAX_FRAME || (type !== FRAME_RESPONSE && type !== FRAME_ERROR)) {
      return "other";
    }
    const data = new TextDecoder().decode(await readExactly(conn, size - 4));
    const answered = type === FRAME_RESPONSE
      ? data === "OK" || data.startsWith("{")
      : data.startsWith("E_");
    return answered ? "nsqd" : "other";
  } catch {
    return "other";
  } finally {
    clearTimeout(timer);
    close();
  }
}

/**
 * Whether the HTTP base URL `url`, listening at `address`, answers as
 * nsqlookupd: `GET /nodes` gives a producers list (nsqd has no /nodes). A
 * refused connection is "nothing".
 */
export async function probeNsqlookupd(
  url: string,
  address: HostPort,
): Promise<"nothing" | "nsqlookupd" | "other"> {
  try {
    (await Deno.connect({ hostname: address.host, port: address.port })).close();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return "nothing";
    throw error;
  }
  try {
    const response = await fetch(`${url}/nodes`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) return "other";
    producersIn(`${url}/nodes`, text);
    return "nsqlookupd";
  } catch {
    return "other";
  }
}

/**
 * Whether an NSQ HTTP endpoint answers `GET /ping`. HTTP, not the TCP port:
 * a TCP probe that sends no protocol magic makes nsqd log an error.
 */
export async function answersPing(httpUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${httpUrl}/ping`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Whether this process could listen on `address`: nothing else holds the port. */
export function canListen(address: HostPort): boolean {
  try {
    Deno.listen({ hostname: address.host, port: address.port }).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return false;
    throw error;
  }
}

/** The V2 magic and an IDENTIFY that asks for nothing: nsqd answers `OK`. */
function identify(): Uint8Array {
  const body = encoder.encode(JSON.stringify({ user_agent: "nsqworker-dev-probe" }));
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, body.length);
  return new Uint8Array([...encoder.encode("  V2IDENTIFY\n"), ...size, ...body]);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
}

async function readExactly(conn: Deno.Conn, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    const n = await conn.read(out.subarray(filled));
    if (n === null) throw new Error(`the connection closed after ${filled} of ${size} bytes`);
    filled += n;
  }
  return out;
}
