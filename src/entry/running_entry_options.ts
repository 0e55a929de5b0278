/**
 * What a running entry is given by the daemon around it.
 *
 * @module
 */

import type { Entry, HostPort } from "../config/types.ts";
import type { DedupeStore } from "../dedupe/store.ts";
import type { EntryPublisher } from "../context/entry_context.ts";
import type { ConsumerTimings } from "../nsq/consumer.ts";
import type { ConnectionOptions } from "../nsq/connection_options.ts";
import type { StallBoard } from "../observe/stall_board.ts";
import type { LoadedWorker } from "../worker/worker_loader.ts";
import type { Logger } from "../worker/worker.ts";
import type { ChildProgram } from "../child/child_program.ts";

/** What an entry needs from the daemon around it. */
export interface RunningEntryOptions {
  readonly entry: Entry;
  readonly worker: LoadedWorker;
  readonly store: DedupeStore;
  readonly publisher: EntryPublisher;
  readonly nsqdAddresses: readonly HostPort[];
  readonly lookupdUrls: readonly string[];
  readonly connection: ConnectionOptions;
  readonly log: Logger;
  readonly timings?: Partial<ConsumerTimings>;
  /**
   * How a child process is started, for an entry with `processes`; by
   * default this program's own command line (see `currentChildProgram`).
   */
  readonly childProgram?: ChildProgram;
  /**
   * Where the entry tells the stall watchdog what it starts and what it has
   * in flight; by default a board that no watchdog reads.
   */
  readonly board?: StallBoard;
}
