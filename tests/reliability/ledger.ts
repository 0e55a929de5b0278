/**
 * The bookkeeping of "no message lost": every id nsqd accepted, every time a
 * handler saw one, and the figures that follow (lost, duplicated), printed
 * in one line per fault so the figures of docs/reliability.md can be read off a run.
 *
 * @module
 */

/** Lost and duplicated, from published and handled ids. */
export interface LedgerFigures {
  /** Ids nsqd accepted. */
  readonly published: number;
  /** Handler runs, duplicates included. */
  readonly handled: number;
  /** Published ids no handler saw. */
  readonly lost: number;
  /** Handler runs beyond the first of their id. */
  readonly duplicated: number;
}

/** Which ids were published and how often each was handled. */
export class Ledger {
  readonly #published = new Set<string>();
  readonly #handled = new Map<string, number>();
  #runs = 0;

  /** Records ids that nsqd accepted. */
  published(ids: Iterable<string>): void {
    for (const id of ids) this.#published.add(id);
  }

  /** Records one handler run for `id`. */
  handled(id: string): void {
    this.#runs++;
    this.#handled.set(id, (this.#handled.get(id) ?? 0) + 1);
  }

  /** How many distinct ids were handled at least once. */
  get distinctHandled(): number {
    return this.#handled.size;
  }

  /** How many ids were published. */
  get publishedCount(): number {
    return this.#published.size;
  }

  /** True once every published id was handled at least once. */
  complete(): boolean {
    if (this.#handled.size < this.#published.size) return false;
    for (const id of this.#published) if (!this.#handled.has(id)) return false;
    return true;
  }

  /** Published ids no handler saw, at most `limit` of them (for messages). */
  lost(limit = Infinity): string[] {
    const lost: string[] = [];
    for (const id of this.#published) {
      if (!this.#handled.has(id)) lost.push(id);
      if (lost.length >= limit) break;
    }
    return lost;
  }

  /** Ids handled that were never published: a mix-up, not a duplicate. */
  strangers(): string[] {
    return [...this.#handled.keys()].filter((id) => !this.#published.has(id));
  }

  figures(): LedgerFigures {
    let duplicated = 0;
    for (const count of this.#handled.values()) duplicated += count - 1;
    return {
      published: this.#published.size,
      handled: this.#runs,
      lost: this.lost().length,
      duplicated,
    };
  }
}

/**
 * Reads what `tests/fixtures/workers/ledger.ts` wrote: one line per handler
 * run, `<received ms> <attempts> <id> [<published ms>]`.
 */
export async function readLedgerFile(path: string): Promise<LedgerLine[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const lines: LedgerLine[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [received, attempts, id, published] = line.split(" ");
    lines.push({
      receivedMs: Number(received),
      attempts: Number(attempts),
      id: id ?? "",
      publishedMs: published !== undefined && /^\d+$/.test(published) ? Number(published) : null,
    });
  }
  return lines;
}

/** One handler run as the ledger worker wrote it. */
export interface LedgerLine {
  readonly receivedMs: number;
  readonly attempts: number;
  readonly id: string;
  /** When the body carried its publish time. */
  readonly publishedMs: number | null;
}

/**
 * Prints one figure line, `reliability <name> {...}`, which the table of
 * docs/reliability.md is read from.
 */
export function reportFigures(name: string, figures: object): void {
  console.log(`reliability ${name} ${JSON.stringify(figures)}`);
}

/** `count` ids `<prefix>000001`, … in order. */
export function makeIds(prefix: string, count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(from + i).padStart(6, "0")}`);
}
