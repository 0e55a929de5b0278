/**
 * The `/metrics` families of entries with a circuit breaker or a shared
 * rate limit.
 *
 * @module
 */

import { BREAKER_STATES } from "../../entry/breaker.ts";
import type { EntrySnapshot } from "./snapshot.ts";
import { entryLabels, type MetricFamily } from "./prometheus.ts";

/**
 * The breaker's state and transitions, and whether a shared rate is kept in
 * redis; a family only when some entry has what it measures.
 *
 * @example
 * ```ts
 * import { protectFamilies } from "./protect_metrics.ts";
 *
 * protectFamilies([]).length; // 0
 * ```
 */
export function protectFamilies(entries: readonly EntrySnapshot[]): MetricFamily[] {
  const families: MetricFamily[] = [];
  const guarded = entries.filter((entry) => entry.breaker !== null);
  if (guarded.length > 0) {
    families.push(
      {
        name: "nsqworker_breaker_state",
        help:
          "1 for the state the entry's circuit breaker is in (closed, open, half_open), 0 for the others.",
        type: "gauge",
        samples: guarded.flatMap((entry) =>
          BREAKER_STATES.map((state) => ({
            labels: { ...entryLabels(entry), state },
            value: entry.breaker!.state === state ? 1 : 0,
          }))
        ),
      },
      {
        name: "nsqworker_breaker_transitions_total",
        help: "Changes of the circuit breaker's state, by the state it went into.",
        type: "counter",
        samples: guarded.flatMap((entry) =>
          BREAKER_STATES.map((to) => ({
            labels: { ...entryLabels(entry), to },
            value: entry.breaker!.transitions[to],
          }))
        ),
      },
      {
        name: "nsqworker_breaker_excused_total",
        help:
          "Deliveries requeued because the breaker was open, which do not count toward max_attempts.",
        type: "counter",
        samples: guarded.map((entry) => ({
          labels: entryLabels(entry),
          value: entry.breaker!.excused,
        })),
      },
    );
  }
  const shared = entries.filter((entry) => entry.rateShared !== null);
  if (shared.length > 0) {
    families.push({
      name: "nsqworker_rate_limit_shared",
      help:
        "1 while a shared rate_limit is kept in redis, 0 while this process keeps it alone (redis unreachable).",
      type: "gauge",
      samples: shared.map((entry) => ({
        labels: entryLabels(entry),
        value: entry.rateShared ? 1 : 0,
      })),
    });
  }
  return families;
}
