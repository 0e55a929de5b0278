/**
 * The kit's publisher: what a handler publishes is kept, not sent, and
 * refused as nsqd would refuse it.
 *
 * @module
 */

import type { EntryPublisher } from "../context/entry_context.ts";
import { encodeBody, PublishError, refusalOf } from "../entry/publisher.ts";
import type { PublishBody } from "../worker/worker.ts";

/** One message the handler published, as it gave it (bytes, a string or a value). */
export interface PublishedMessage {
  readonly topic: string;
  readonly body: PublishBody;
  /** Set for `publishDeferred`. */
  readonly delayMs?: number;
}

/** Records what the daemon's publisher would send, and refuses what it would refuse. */
export function recordingPublisher(published: PublishedMessage[]): EntryPublisher {
  const record = (topic: string, bodies: readonly PublishBody[], delayMs?: number) => {
    let refusal: string | null;
    try {
      refusal = refusalOf(topic, bodies.map(encodeBody), delayMs ?? 0);
    } catch (error) {
      return Promise.reject(error);
    }
    if (refusal !== null) {
      return Promise.reject(new PublishError(`cannot publish to ${topic}: ${refusal}`));
    }
    for (const body of bodies) {
      published.push(delayMs === undefined ? { topic, body } : { topic, body, delayMs });
    }
    return Promise.resolve();
  };
  return {
    publish: (topic, body) => record(topic, [body]),
    publishMany: (topic, bodies) => record(topic, bodies),
    publishDeferred: (topic, body, delayMs) =>
      delayMs >= 0 ? record(topic, [body], delayMs) : Promise.reject(
        new PublishError(`publishDeferred delay must be 0 or more milliseconds, got ${delayMs}`),
      ),
    publishRaw: (topic, body) => record(topic, [body]),
  };
}
