/**
 * Messages in a child process: each checked (decode, validation, dedupe
 * key) as the daemon asks, held until the daemon hands it to its handler
 * (or to a batch, or drops it), and its handler run with the daemon's own
 * `ctx`, aborted when the daemon says so.
 *
 * @module
 */

import { MessageContext } from "../context/message_context.ts";
import { isPromiseLike } from "../is_promise_like.ts";
import type { TaskMessage } from "../runner/task_runner.ts";
import type { CheckResult } from "../runner/worker_code.ts";
import type { FrameReader } from "./frames.ts";
import { writeSettled } from "./payloads.ts";
import type { ChildWorker } from "./child_worker.ts";
import {
  CHECK_DEAD,
  DEAD_REASONS,
  FRAME,
  KEY_CUSTOM,
  KEY_DEFAULT,
  KEY_NONE,
  OWNER_MESSAGE,
} from "./protocol.ts";

/** A message checked and waiting for its handler or batch. */
export interface Held {
  readonly message: TaskMessage;
  readonly body: unknown;
}

/** The messages a child has checked, holds and runs handlers on. */
export class ChildMessages {
  readonly #worker: ChildWorker;
  readonly #held = new Map<number, Held>();
  readonly #running = new Map<number, AbortController>();

  constructor(worker: ChildWorker) {
    this.#worker = worker;
  }

  /** Checks the message of a `CHECK` frame; answers `CHECKED`, and holds it if it passed. */
  check(frame: FrameReader): void {
    const id = frame.u32();
    const attempts = frame.u32();
    const timestamp = frame.f64();
    const messageId = frame.text();
    const body = frame.bytes();
    const message: TaskMessage = {
      id: messageId,
      attempts,
      timestamp,
      body,
      msgTimeoutMs: 0,
      idScope: "",
      touch: () => this.#worker.forwarder.touch(OWNER_MESSAGE, id),
    };
    const checked = this.#worker.code.check(message);
    if (checked instanceof Promise) {
      checked.then((checked) => this.#checked(id, message, checked));
    } else {
      this.#checked(id, message, checked);
    }
  }

  #checked(id: number, message: TaskMessage, checked: CheckResult): void {
    const out = this.#worker.out.begin(FRAME.CHECKED).u32(id);
    if (checked.kind === "dead") {
      out.u8(CHECK_DEAD).u8(DEAD_REASONS.indexOf(checked.reason)).text(checked.error);
    } else {
      this.#held.set(id, { message, body: checked.body });
      if (checked.key === undefined) out.u8(KEY_DEFAULT);
      else if (checked.key === null) out.u8(KEY_NONE);
      else out.u8(KEY_CUSTOM).text(checked.key);
    }
    this.#worker.out.end();
  }

  /** A held message leaves (for a batch, or dropped); undefined if none is held as `id`. */
  take(id: number): Held | undefined {
    const held = this.#held.get(id);
    this.#held.delete(id);
    return held;
  }

  /** Runs the handler of held message `id`; answers `SETTLED` when it returns or throws. */
  handle(id: number): void {
    const held = this.take(id);
    if (held === undefined) return this.#settled(id, new Error(`no checked message ${id}`));
    const controller = new AbortController();
    this.#running.set(id, controller);
    const ctx = new MessageContext(
      this.#worker.context,
      held.message,
      controller.signal,
      () => this.#worker.forwarder.publisher(OWNER_MESSAGE, id),
    );
    let result: unknown;
    try {
      result = this.#worker.code.handle(held.body, ctx);
    } catch (error) {
      return this.#settled(id, error);
    }
    if (!isPromiseLike(result)) return this.#settled(id, undefined, true);
    Promise.resolve(result).then(
      () => this.#settled(id, undefined, true),
      (error) => this.#settled(id, error),
    );
  }

  /** Aborts the running handler `id`, if it still runs. */
  abort(id: number, reason: DOMException): void {
    this.#running.get(id)?.abort(reason);
  }

  #settled(id: number, error: unknown, returned = false): void {
    this.#running.delete(id);
    const out = this.#worker.out.begin(FRAME.SETTLED).u32(id);
    writeSettled(out, returned, error);
    this.#worker.out.end();
  }
}
