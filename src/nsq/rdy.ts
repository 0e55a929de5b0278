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
 * order) so that the total never
 * exceeds it and none of it is lost: each gets the quotient, and the
 * remainder goes one apiece to the connections starting at `offset`.
 * With fewer slots than connections, only `maxInFlight` of them get 1;
 * advancing `offset` over time gives every connection its turn.
 * Connections that are not ready are simply not passed in, so a failing
 * connection never takes RDY from a healthy one.
 */
export function allocateRdy(
  maxInFlight: number,
  connections: readonly RdyConnection[],
  offset = 0,
): number[] {
  const n = connections.length;
  const allocation = new Array<number>(n);
  if (n === 0) return allocation;
  const total = Math.max(0, Math.floor(maxInFlight) || 0);
  const share = Math.floor(total / n);
  const remainder = total - share * n;
  const start = ((offset % n) + n) % n;
  for (let i = 0; i < n; i++) {
    const connection = connections[i]!;
    const extra = (i - start + n) % n < remainder ? 1 : 0;
    allocation[i] = Math.min(share + extra, connection.maxRdyCount);
  }
  return allocation;
}
