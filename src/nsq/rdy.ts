/**
 * How a consumer's `max_in_flight` is shared among its nsqd connections.
 *
 * @module
 */

/** A connection as RDY allocation sees it. */
export interface RdyConnection {
  /** The largest RDY this nsqd accepts (from IDENTIFY). */
  readonly maxRdyCount: number;
}

/**
 * Splits `maxInFlight` over the ready connections (one share each, in their
 * order) so that the total never exceeds it and none of it is lost: each
 * gets the quotient, and the remainder goes one apiece to the first
 * connections. Connections that are not ready are simply not passed in, so
 * a failing connection never takes RDY from a healthy one. With fewer slots
 * than connections the planner moves them instead (see `rdy_planner.ts`).
 */
export function allocateRdy(maxInFlight: number, connections: readonly RdyConnection[]): number[] {
  const n = connections.length;
  const allocation = new Array<number>(n);
  if (n === 0) return allocation;
  const total = Math.max(0, Math.floor(maxInFlight) || 0);
  const share = Math.floor(total / n);
  const remainder = total - share * n;
  for (let i = 0; i < n; i++) {
    const extra = i < remainder ? 1 : 0;
    allocation[i] = Math.min(share + extra, connections[i]!.maxRdyCount);
  }
  return allocation;
}
