/**
 * A message as the task runner sees it.
 *
 * @module
 */

import type { Message } from "../worker/worker.ts";

/** A message as the runner sees it: the worker's {@linkcode Message} plus what the connection offers. */
export interface TaskMessage extends Message {
  /** nsqd's message timeout on this connection, in milliseconds. */
  readonly msgTimeoutMs: number;
  /** Sends `TOUCH` for this message, resetting nsqd's message timeout. */
  touch(): void;
  /**
   * The dedupe scope of the default key, `id`: the entry's scope and the nsqd
   * that delivered the message. nsqd mints ids from a time, its `--node-id`
   * and a per-millisecond sequence, so two nsqd sharing a node-id give the
   * same id to different messages. Made once per connection, not per message.
   */
  readonly idScope: string;
}
