/**
 * The entry's publisher as a traced entry's workers publish through it:
 * each `publish*` call is a send with a PRODUCER span of its own, and its
 * bodies carry that span on.
 *
 * @module
 */

import type { EntryPublisher } from "../../context/entry_context.ts";
import { withTraceParents } from "../../observe/trace_parent.ts";
import type { PublishBody } from "../../worker/worker.ts";
import type { SendSpan } from "./send_span.ts";

/** Starts the span of one `publish*` call of `count` messages to `topic`, as a worker names it. */
export type StartSend = (topic: string, count: number, operation: string) => SendSpan;

/**
 * `publisher` making a PRODUCER span for each `publish*` call (with
 * `startSend`) and, with a trace field, writing that span's `traceparent`
 * into JSON object bodies. Under an unsampled span (a batch's) it makes none
 * and writes that span's.
 */
export function tracingPublisher(
  publisher: EntryPublisher,
  traceField: string | null,
  startSend: StartSend,
): EntryPublisher {
  const inject = (bodies: readonly PublishBody[], traceparent: string | null) =>
    withTraceParents(bodies, traceField, traceparent);
  const send = async (
    topic: string,
    count: number,
    operation: string,
    publish: (traceparent: string | null) => Promise<void>,
  ): Promise<void> => {
    const sendSpan = startSend(topic, count, operation);
    try {
      await publish(sendSpan.traceparent);
    } catch (error) {
      sendSpan.end(error);
      throw error;
    }
    sendSpan.end();
  };
  return {
    publish: (topic, body) =>
      send(topic, 1, "publish", (tp) => publisher.publish(topic, inject([body], tp)[0])),
    publishMany: (topic, bodies) =>
      send(
        topic,
        bodies.length,
        "publish",
        (tp) => publisher.publishMany(topic, inject(bodies, tp)),
      ),
    publishDeferred: (topic, body, delayMs) =>
      send(
        topic,
        1,
        "publish_deferred",
        (tp) => publisher.publishDeferred(topic, inject([body], tp)[0], delayMs),
      ),
    publishRaw: (nsqTopic, body) => publisher.publishRaw(nsqTopic, body),
  };
}
