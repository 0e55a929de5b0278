/**
 * Load for the fault tests: publishes ids to nsqd over HTTP at a steady
 * rate, in small batches, while a test breaks things. A batch nsqd does not
 * accept (it is down) is tried again until it is, so every id ends up
 * published exactly when nsqd said so, and the ledger knows it.
 *
 * @module
 */

import type { NsqCluster } from "../helpers/nsq/nsq_cluster.ts";
import type { Ledger } from "./ledger.ts";

/** Options of {@linkcode startPublisher}. */
export interface PublisherOptions {
  readonly nsq: NsqCluster;
  readonly topic: string;
  readonly ids: readonly string[];
  readonly ledger: Ledger;
  /** Messages per second. */
  readonly ratePerSec: number;
  /** Ids per request. Default 50. */
  readonly batch?: number;
  /** The nsqd (index) each batch goes to, asked per batch. Default 0. */
  readonly target?: () => number;
  /** The body of an id. Default: the id. */
  readonly body?: (id: string) => string;
  /** Pause before trying a refused batch again. Default 50 ms. */
  readonly retryMs?: number;
}

/** A publisher running in the background. */
export interface Publisher extends AsyncDisposable {
  /** Resolves once every id was accepted (or `stop()` was called). */
  readonly done: Promise<void>;
  /** Ids accepted so far. */
  readonly accepted: number;
  /** Requests nsqd refused or that could not reach it. */
  readonly refused: number;
  /** Stops after the batch under way. */
  stop(): Promise<void>;
}

/**
 * Starts publishing `ids` in order at `ratePerSec`.
 *
 * @example
 * ```ts
 * await using publisher = startPublisher({ nsq, topic, ids, ledger, ratePerSec: 1000 });
 * await publisher.done;
 * ```
 */
export function startPublisher(options: PublisherOptions): Publisher {
  const { nsq, topic, ids, ledger, ratePerSec } = options;
  const batch = options.batch ?? 50;
  const target = options.target ?? (() => 0);
  const body = options.body ?? ((id: string) => id);
  const retryMs = options.retryMs ?? 50;
  let stopping = false;
  let accepted = 0;
  let refused = 0;
  let wake: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Waits `ms` unless stop() comes first. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
    }).finally(() => {
      clearTimeout(timer);
      wake = null;
    });

  const run = async () => {
    const started = performance.now();
    for (let start = 0; start < ids.length && !stopping; start += batch) {
      const slice = ids.slice(start, start + batch);
      // Paced from the start, so a stall (nsqd down) is followed by a catch-up.
      await pause(started + (start / ratePerSec) * 1000 - performance.now());
      while (!stopping) {
        try {
          await nsq.publishMany(topic, slice.map(body), target());
          ledger.published(slice);
          accepted += slice.length;
          break;
        } catch {
          refused++;
          await pause(retryMs);
        }
      }
    }
  };
  const done = run();
  const stop = async () => {
    stopping = true;
    wake?.();
    await done;
  };
  return {
    done,
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
