/**
 * A publishing connection to one nsqd.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { formatHostPort } from "../config/address.ts";
import type { ConnectionOptions } from "./connection_options.ts";
import { MAX_REQ_DELAY_MS } from "./nsq_message.ts";
import { asError } from "../error_text.ts";
import { createNsqjsWriter, type NsqjsWriter } from "./nsqjs.ts";
import { guard } from "./nsqjs/guard.ts";

/** What a publishing connection reports. */
export interface WriterEvents {
  closed(error: Error | null): void;
  error(error: Error): void;
}

/** A publishing connection to one nsqd (PUB, MPUB, DPUB). */
export class WriterConnection {
  readonly address: string;
  /** Resolves once IDENTIFY (and TLS/AUTH) are done; rejects if the connection closes first. */
  readonly ready: Promise<void>;
  #conn: NsqjsWriter;
  #closed = false;
  /** Why the connection ended when it was its idle timeout: nsqjs says only "closed". */
  #idle: Error | null = null;

  constructor(host: string, port: number, options: ConnectionOptions, events: WriterEvents) {
    this.address = formatHostPort({ host, port });
    const conn = createNsqjsWriter(host, port, options);
    this.#conn = conn;
    let lastError: Error | null = null;
    this.ready = new Promise((resolve, reject) => {
      conn.on("ready", () => resolve());
      const onError = (error: unknown) => {
        if (this.#closed) return; // the same socket error again, as `connection_error`
        lastError = asError(error);
        guard(events, () => events.error(lastError!));
      };
      conn.on("error", onError);
      conn.on("connection_error", onError);
      // Comes just before nsqjs ends the connection and fails what is pending.
      conn.on("idle_timeout", (seconds: number) => {
        if (this.#closed) return;
        lastError = this.#idle = new Error(`no data from nsqd for ${seconds} s (idle timeout)`);
      });
      conn.on("closed", () => {
        this.#closed = true;
        reject(lastError ?? new Error("connection closed"));
        guard(events, () => events.closed(lastError));
      });
    });
    // A connection that never became ready is reported through `closed`.
    this.ready.catch(() => {});
    conn.connect();
  }

  /** True once the connection is gone. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Publishes `bodies` to `topic`: PUB for one, MPUB for several, DPUB for
   * one with `deferMs` > 0. Resolves when nsqd answers OK.
   */
  publish(topic: string, bodies: readonly Uint8Array[], deferMs = 0): Promise<void> {
    if (this.#closed) return Promise.reject(this.#idle ?? new Error("connection closed"));
    const buffers = bodies.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const delay = Math.min(MAX_REQ_DELAY_MS, Math.max(0, Math.round(deferMs || 0)));
    return new Promise((resolve, reject) => {
      try {
        this.#conn.produceMessages(topic, buffers, delay, (error: unknown) => {
          if (error) reject(this.#idle ?? asError(error));
          else resolve();
        });
      } catch (error) {
        reject(asError(error));
      }
    });
  }

  /** Closes once what was published has been flushed. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    await this.#conn.endGracefully(timeoutMs);
  }

  /** Drops the connection at once. */
  destroy(): void {
    if (this.#closed) return;
    this.#conn.destroySoon();
  }
}
