/**
 * Publishing to `nsq.publish_nsqd_tcp_address`, shared by every entry's
 * `ctx.publish` and by dead letters. One connection, opened on first use and
 * reopened on the next publish after it is lost.
 *
 * @module
 */

import { isNsqName } from "../config/names.ts";
import type { HostPort } from "../config/types.ts";
import type { ConnectionOptions } from "../nsq/connection_options.ts";
import { WriterConnection } from "../nsq/writer_connection.ts";
import type { Logger, PublishBody, Publisher } from "../worker/worker.ts";
import { errorText } from "../error_text.ts";
import { TIMED_OUT, withTimeout } from "../with_timeout.ts";
import { NSQD_LIMITS } from "../config/nsqd_limits.ts";

const encoder = new TextEncoder();

/** A publish that nsqd refused, or that could not reach it. */
export class PublishError extends Error {
  /** `message` names the topic, the nsqd and the cause. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PublishError";
  }
}

/** Bytes and strings go as they are; anything else as JSON. */
export function encodeBody(body: PublishBody): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return encoder.encode(body);
  const json = JSON.stringify(body);
  if (json === undefined) {
    throw new PublishError(
      `cannot publish ${typeof body}: expected bytes, a string or a JSON value`,
    );
  }
  return encoder.encode(json);
}

/** What the publisher needs. */
export interface NsqPublisherOptions {
  readonly address: HostPort | null;
  readonly topicPrefix: string;
  readonly connection: ConnectionOptions;
  readonly log: Logger;
  readonly connectTimeoutMs?: number;
  readonly publishTimeoutMs?: number;
}

/** Publishes through one nsqd connection; `topic_prefix` is applied to every topic. */
export class NsqPublisher implements Publisher {
  #options: NsqPublisherOptions;
  #writer: WriterConnection | null = null;
  #closed = false;

  constructor(options: NsqPublisherOptions) {
    this.#options = options;
  }

  /** PUB one message. */
  publish(topic: string, body: PublishBody): Promise<void> {
    return this.#send(topic, [body], 0);
  }

  /** MPUB several messages. */
  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    if (bodies.length === 0) return Promise.resolve();
    return this.#send(topic, bodies, 0);
  }

  /** DPUB one message, delivered after `delayMs`. */
  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    if (!(delayMs >= 0)) {
      return Promise.reject(
        new PublishError(`publishDeferred delay must be 0 or more milliseconds, got ${delayMs}`),
      );
    }
    return this.#send(topic, [body], delayMs);
  }

  /** Publishes to `topic` exactly as given (no prefix): dead letters are resolved already. */
  publishRaw(nsqTopic: string, body: Uint8Array): Promise<void> {
    return this.#write(nsqTopic, [body], 0);
  }

  /** Closes the connection after what was published has been flushed. */
  async close(): Promise<void> {
    this.#closed = true;
    const writer = this.#writer;
    this.#writer = null;
    await writer?.close();
  }

  async #send(topic: string, bodies: readonly PublishBody[], deferMs: number): Promise<void> {
    let encoded: Uint8Array[];
    try {
      encoded = bodies.map(encodeBody);
    } catch (error) {
      throw error instanceof PublishError ? error : new PublishError(String(error));
    }
    await this.#write(this.#options.topicPrefix + topic, encoded, deferMs);
  }

  async #write(topic: string, bodies: Uint8Array[], deferMs: number): Promise<void> {
    const address = this.#options.address;
    if (address === null) {
      throw new PublishError(
        `cannot publish to ${topic}: nsq.publish_nsqd_tcp_address is not configured`,
      );
    }
    if (this.#closed) throw new PublishError(`cannot publish to ${topic}: the daemon is stopping`);
    const refusal = refusalOf(topic, bodies, deferMs);
    if (refusal !== null) throw new PublishError(`cannot publish to ${topic}: ${refusal}`);
    const writer = this.#connection(address);
    const where = `${topic} at nsqd ${writer.address}`;
    try {
      const connectMs = this.#options.connectTimeoutMs ?? 5000;
      if (await withTimeout(writer.ready, connectMs) === TIMED_OUT) {
        throw new Error(`no connection within ${connectMs}ms`);
      }
      const publishMs = this.#options.publishTimeoutMs ?? 10_000;
      if (await withTimeout(writer.publish(topic, bodies, deferMs), publishMs) === TIMED_OUT) {
        throw new Error(`no answer within ${publishMs}ms`);
      }
    } catch (error) {
      // A connection that timed out may still answer later, out of order:
      // start afresh on the next publish.
      if (this.#writer === writer) {
        this.#writer = null;
        writer.destroy();
      }
      const reason = errorText(error);
      throw new PublishError(`cannot publish to ${where}: ${reason}`, { cause: error });
    }
  }

  #connection(address: HostPort): WriterConnection {
    if (this.#writer === null || this.#writer.isClosed) {
      const writer: WriterConnection = new WriterConnection(
        address.host,
        address.port,
        this.#options.connection,
        {
          closed: () => {
            if (this.#writer === writer) this.#writer = null;
          },
          error: (error) => {
            this.#options.log.warning("publishing nsqd error", {
              nsqd: writer.address,
              error: error.message,
            });
          },
        },
      );
      this.#writer = writer;
    }
    return this.#writer;
  }
}

/**
 * Why nsqd would refuse this publish, or null. nsqd answers such a publish
 * with a fatal error and closes the connection, failing every other publish
 * in flight on it (dead letters included), so these are refused here.
 */
export function refusalOf(
  topic: string,
  bodies: readonly Uint8Array[],
  deferMs: number,
): string | null {
  if (!isNsqName(topic)) {
    return "the topic is not a valid NSQ name ([.a-zA-Z0-9_-], at most 64 characters)";
  }
  let total = 0;
  for (const body of bodies) {
    if (body.length === 0) return "nsqd refuses an empty message";
    if (body.length > NSQD_LIMITS.msgBytes) {
      return `a message of ${body.length} bytes is over nsqd's --max-msg-size of ${NSQD_LIMITS.msgBytes}`;
    }
    total += body.length + 4;
  }
  if (total > NSQD_LIMITS.bodyBytes) {
    return `${total} bytes in one MPUB is over nsqd's --max-body-size of ${NSQD_LIMITS.bodyBytes}`;
  }
  if (deferMs > NSQD_LIMITS.deferMs) {
    return `a delay of ${deferMs}ms is over nsqd's --max-req-timeout of ${NSQD_LIMITS.deferMs}ms`;
  }
  return null;
}
