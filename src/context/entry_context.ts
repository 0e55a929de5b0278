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

/**
 * `publish`, `publishMany` and `publishDeferred`, each passed on to
 * {@linkcode ForwardingPublisher.target} as it is at the call: the one
 * forwarding behind the entry's `ctx`, every handler's `ctx` and the
 * publisher a reload can replace.
 */
export abstract class ForwardingPublisher implements Publisher {
  /** Where the calls go. */
  protected abstract readonly target: Publisher;

  publish(topic: string, body: PublishBody): Promise<void> {
    return this.target.publish(topic, body);
  }

  publishMany(topic: string, bodies: readonly PublishBody[]): Promise<void> {
    return this.target.publishMany(topic, bodies);
  }

  publishDeferred(topic: string, body: PublishBody, delayMs: number): Promise<void> {
    return this.target.publishDeferred(topic, body, delayMs);
  }
}

/** An {@linkcode EntryPublisher} that sends every call through what `current()` gives at that call. */
export class CurrentPublisher extends ForwardingPublisher implements EntryPublisher {
  readonly #current: () => EntryPublisher;

  constructor(current: () => EntryPublisher) {
    super();
    this.#current = current;
  }

  protected get target(): EntryPublisher {
    return this.#current();
  }

  publishRaw(nsqTopic: string, body: Uint8Array): Promise<void> {
    return this.#current().publishRaw(nsqTopic, body);
  }
}

/** An entry's {@linkcode SetupContext}. */
export class EntryContext extends ForwardingPublisher implements SetupContext {
  readonly topic: string;
  readonly channel: string;
  readonly worker: string;
  readonly options: Readonly<WorkerOptions>;
  readonly log: Logger;
  /** The publisher that every `ctx` of the entry and its dead letters use. */
  readonly publisher: EntryPublisher;

  constructor(options: EntryContextOptions) {
    super();
    this.topic = options.topic;
    this.channel = options.channel;
    this.worker = options.worker;
    this.options = options.options;
    this.log = options.log;
    this.publisher = options.publisher;
  }

  protected get target(): EntryPublisher {
    return this.publisher;
  }
}
