/**
 * One message on its way through the task runner, from its claim to its
 * outcome; a batch worker's batcher holds it until its batch ends.
 *
 * @module
 */

import type { TaskMessage } from "./task_message.ts";

/** One message on its way through the runner, from its claim to its outcome. */
export interface Attempt {
  readonly message: TaskMessage;
  readonly body: unknown;
  readonly scope: string;
  /** Null when the message has no dedupe. */
  readonly key: string | null;
  /** Null when there is no claim to renew, release or complete (no dedupe, or the claim failed). */
  token: string | null;
  /** The key was checked, not claimed, in a process-local store (see `DedupeStore.check`). */
  checked: boolean;
  readonly periodMs: number;
  readonly leaseMs: number;
  readonly stop: AbortSignal | undefined;
}
