/**
 * The worker's `ctx` in a child process: the daemon's own contexts, with
 * `publish*` sent to the daemon as calls it answers, and `touch` and `log`
 * sent to it as frames.
 *
 * @module
 */

import { EntryContext, type EntryPublisher } from "../context/entry_context.ts";
import { describeError } from "../error_text.ts";
import type { Logger, PublishBody } from "../worker/worker.ts";
import type { FrameReader } from "./frames.ts";
import { encodeBodies, writeBodies } from "./payloads.ts";
import type { ChildOutbox } from "./child_outbox.ts";
import {
  type ChildInit,
  FRAME,
  LOG_LEVELS,
  PUBLISH,
  PUBLISH_DEFERRED,
  PUBLISH_MANY,
} from "./protocol.ts";

/** Builds contexts whose `publish*`, `touch` and `log` go to the daemon. */
export class ContextForwarder {
  readonly #out: ChildOutbox;
  readonly #init: ChildInit;
  readonly #minLevel: number;
  readonly #calls = new Map<number, PromiseWithResolvers<void>>();
  #nextCall = 1;

  constructor(out: ChildOutbox, init: ChildInit) {
    this.#out = out;
    this.#init = init;
    this.#minLevel = Math.max(0, LOG_LEVELS.indexOf(init.logLevel));
  }

  /** An entry's `ctx` whose `publish*`, `touch` and `log` go to the daemon as `owner`'s. */
  entryContext(
    options: Readonly<Record<string, unknown>>,
    kind: number,
    id: number,
  ): EntryContext {
    const init = this.#init;
    return new EntryContext({
      topic: init.topic,
      channel: init.channel,
      worker: init.worker,
      options,
      log: this.#logger(),
      publisher: this.publisher(kind, id),
    });
  }

  /** Publishing as the daemon's publisher of `kind`'s owner `id`. */
  publisher(kind: number, id: number): EntryPublisher {
    return {
      publish: (topic, body) => this.#call(kind, id, PUBLISH, topic, [body], 0),
      publishMany: (topic, bodies) => this.#call(kind, id, PUBLISH_MANY, topic, bodies, 0),
      publishDeferred: (topic, body, delayMs) =>
        this.#call(kind, id, PUBLISH_DEFERRED, topic, [body], delayMs),
      publishRaw: () => Promise.reject(new Error("a child publishes no raw topics")),
    };
  }

  /** Touches the message (or every message of the batch) `kind`'s owner `id` runs on. */
  touch(kind: number, id: number): void {
    this.#out.begin(FRAME.TOUCH).u8(kind).u32(id);
    this.#out.end();
  }

  /** The daemon's answer to a call: its publish resolved or failed. */
  reply(frame: FrameReader): void {
    const call = this.#calls.get(frame.u32());
    const ok = frame.u8() === 1;
    const error = frame.text();
    if (call === undefined) return;
    if (ok) call.resolve();
    else call.reject(new Error(error));
  }

  #logger(): Logger {
    const at = (level: number) => (msg: string, properties?: Record<string, unknown>) => {
      if (level < this.#minLevel) return;
      this.#out.begin(FRAME.LOG).u8(level).text(msg).text(propertiesJson(properties));
      this.#out.end();
    };
    return { debug: at(0), info: at(1), warning: at(2), error: at(3) };
  }

  /** Asks the daemon to publish; resolves or rejects as its publish did. */
  #call(
    kind: number,
    id: number,
    method: number,
    topic: string,
    bodies: readonly PublishBody[],
    delayMs: number,
  ): Promise<void> {
    const encoded = encodeBodies(bodies);
    if (encoded instanceof Error) return Promise.reject(encoded);
    const callId = this.#nextCall++;
    const call = Promise.withResolvers<void>();
    this.#calls.set(callId, call);
    const out = this.#out.begin(FRAME.CALL).u32(callId).u8(kind).u32(id).u8(method).text(topic)
      .f64(delayMs);
    writeBodies(out, encoded);
    this.#out.end();
    return call.promise.finally(() => this.#calls.delete(callId));
  }
}

/** Log properties as JSON; what JSON cannot hold is written as text. */
function propertiesJson(properties: Record<string, unknown> | undefined): string {
  if (properties === undefined) return "{}";
  try {
    return JSON.stringify(
      properties,
      (_key, value) =>
        value instanceof Error
          ? describeError(value)
          : typeof value === "bigint"
          ? String(value)
          : value,
    ) ?? "{}";
  } catch (error) {
    return JSON.stringify({ properties_error: describeError(error) });
  }
}
