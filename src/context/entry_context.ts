/**
 * The `ctx` of a worker's `setup()` and `teardown()`, and the base of every
 * handler's `ctx`: it holds the entry's one reference to the publisher.
 *
 * @module
 */

import type {
  Logger,
  PublishBody,
  Publisher,
  SetupContext,
  WorkerOptions,
} from "../worker/worker.ts";

/** Publishing as an entry needs it: the worker's API, and raw topics for dead letters. */
export interface EntryPublisher extends Publisher {
  /** Publishes to a topic exactly as given (`topic_prefix` already applied). */
  publishRaw(nsqTopic: string, body: Uint8Array): Promise<void>;
}

/** What an {@linkcode EntryContext} is made of: its fields, and the publisher its methods use. */
export type EntryContextOptions = Omit<SetupContext, keyof Publisher> & {
  /** Where `ctx.publish` and the entry's dead letters go. */
  readonly publisher: EntryPublisher;
};

/** An entry's {@linkcode SetupContext}. */
export class EntryContext implements SetupContext {
  readonly topic: string;
  readonly channel: string;
  readonly worker: string;
  readonly options: Readonly<WorkerOptions>;
  readonly log: Logger;
  /** The publisher that every `ctx` of the entry and its dead letters use. */
  readonly publisher: EntryPublisher;

  constructor(options: EntryContextOptions) {
    this.topic = options.topic;
    this.channel = options.channel;
    this.worker = options.worker;
    this.options = options.options;
    this.log = options.log;
    this.publisher = options.publisher;
  }

  publish(topic: string, body: PublishBody): Promise<void> {
    return this.publisher.publish(topic, body);
  }

  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    return this.publisher.publishMany(topic, bodies);
  }

  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    return this.publisher.publishDeferred(topic, body, delayMs);
  }
}
