/**
 * TLS as asked for: the server name is sent and verified, and an nsqd that
 * does not take TLS up is refused rather than spoken to in plaintext.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import type { Buffer } from "node:buffer";
import { isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { formatHostPort } from "../../config/address.ts";
import { type StateHandler, withStateHandler } from "./state_handler.ts";

/**
 * nsqjs's connection with its TLS start fixed to send the server name, so
 * that certificate verification checks the host we meant and SNI works; and
 * with TLS asked for, an IDENTIFY answer that does not take it up fails the
 * connection.
 */
export function withTls(base: any): any {
  return class extends withStateHandler(base, "IDENTIFY_RESPONSE", "response", refuseDowngrade) {
    startTLS(callback?: () => void): void {
      for (const event of ["data", "error", "close"]) this.conn.removeAllListeners(event);
      const host: string = this.nsqdHost;
      const socket = tlsConnect({
        socket: this.conn,
        // Without `host`, node:tls checks the certificate against "localhost"
        // whenever there is no servername, which is the case for an IP.
        host,
        servername: isIP(host) === 0 ? host : undefined,
        rejectUnauthorized: this.config.tlsVerification,
        ca: this.config.ca ?? undefined,
        key: this.config.key ?? undefined,
        cert: this.config.cert ?? undefined,
      }, () => {
        this.conn = socket;
        callback?.();
      });
      this.outWriter = socket;
      this.registerStreamListeners(socket);
    }
  };
}

/**
 * IDENTIFY's answer handler, failing the connection when TLS is asked for
 * and nsqd does not take it up: nsqjs goes on in plaintext, a downgrade
 * (and AUTH would send the secret in clear), so the connection fails before
 * anything else is sent.
 */
function refuseDowngrade(onIdentify: StateHandler, connection: any): StateHandler {
  return (data: Buffer) => {
    if (connection.config.tls && !negotiatesTls(data)) {
      const nsqd = formatHostPort({ host: connection.nsqdHost, port: connection.nsqdPort });
      return connection.statemachine.goto(
        "ERROR",
        new Error(
          `nsq.tls is set but nsqd ${nsqd} did not negotiate TLS (its IDENTIFY answer has no tls_v1: true); refusing to continue in plaintext`,
        ),
      );
    }
    return onIdentify(data);
  };
}

/** Whether nsqd's answer to IDENTIFY takes up TLS (a bare `OK` is an nsqd without feature negotiation). */
function negotiatesTls(data: Buffer): boolean {
  try {
    return JSON.parse(data.toString())?.tls_v1 === true;
  } catch {
    return false;
  }
}
