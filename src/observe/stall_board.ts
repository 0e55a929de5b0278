/**
 * What the stall watchdog reads about the daemon's thread, in memory it
 * shares with it: a heartbeat the thread bumps while it turns, the message
 * it started last, and the messages in flight at its last heartbeat. The
 * thread writes; the watchdog, on a thread of its own, reads once the
 * heartbeat has stopped, when the daemon's thread can no longer answer.
 *
 * Starting a message costs a handful of stores into the shared buffer and
 * no allocation: the message that blocks the thread in a synchronous loop
 * is the last one it started. A handler that resumed after an `await` and
 * then blocked is among the messages in flight at the last heartbeat.
 *
 * @module
 */

/** How an entry is named in log lines. */
export interface EntryName {
  readonly topic: string;
  readonly channel: string;
  readonly worker: string;
}

/** What the board reads of a message. */
export interface BoardMessage {
  readonly id: string;
  readonly attempts: number;
}

/** What the thread was doing when it last started something of an entry. */
export type BoardPhase = "message" | "setup" | "teardown";

const PHASES: readonly BoardPhase[] = ["message", "setup", "teardown"];

/** NSQ message ids are 16 bytes, read as 16 latin1 characters. */
const ID_BYTES = 16;
/** The messages in flight written at each heartbeat; the others are only counted. */
export const LISTED_IN_FLIGHT = 64;

// Int32 slots of the header.
const BEAT = 0;
const LAST_ENTRY = 1;
const LAST_ATTEMPTS = 2;
const LAST_PHASE = 3;
const LISTED = 4;
const UNLISTED = 5;
// Byte offsets.
const LAST_ID_AT = 32;
const RECORDS_AT = LAST_ID_AT + ID_BYTES;
/** A record: the entry's number, the attempts, the id. */
const RECORD_BYTES = 8 + ID_BYTES;
const BOARD_BYTES = RECORDS_AT + LISTED_IN_FLIGHT * RECORD_BYTES;

const NONE = -1;

/**
 * The daemon's side of the board: entries register on it, and the thread
 * beats it while it turns.
 *
 * @example
 * ```ts
 * import { readStallBoard, StallBoard } from "./stall_board.ts";
 *
 * const board = new StallBoard();
 * const entry = board.entry({ topic: "pageviews", channel: "counter", worker: "demo/pageview" });
 * board.beat();
 * entry.started({ id: "0a1b2c3d4e5f6789", attempts: 1 });
 * readStallBoard(board.buffer).last?.id; // "0a1b2c3d4e5f6789"
 * ```
 */
export class StallBoard {
  /** The shared memory, for the watchdog's thread. */
  readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(BOARD_BYTES);
  readonly #ints = new Int32Array(this.buffer);
  readonly #bytes = new Uint8Array(this.buffer);
  readonly #view = new DataView(this.buffer);
  readonly #entries = new Map<number, BoardEntry>();
  #next = 0;
  /** Told whenever an entry registers or leaves. */
  onEntries: (() => void) | null = null;

  constructor() {
    this.#ints[LAST_ENTRY] = NONE;
  }

  /** Registers an entry: the board then names it by its number. */
  entry(name: EntryName): BoardEntry {
    const entry = new BoardEntry(this.#next++, name, this.#ints, this.#bytes, (gone) => {
      if (this.#entries.delete(gone.number)) this.onEntries?.();
    });
    this.#entries.set(entry.number, entry);
    this.onEntries?.();
    return entry;
  }

  /** The names of the registered entries, by number. */
  names(): Map<number, EntryName> {
    return new Map([...this.#entries].map(([number, entry]) => [number, entry.name]));
  }

  /**
   * The thread turned: lists the messages in flight and bumps the
   * heartbeat. What starts after this is the thread's work since its last
   * heartbeat.
   */
  beat(): void {
    const ints = this.#ints;
    const view = this.#view;
    let listed = 0;
    let unlisted = 0;
    for (const entry of this.#entries.values()) {
      let written = 0;
      for (const message of entry.inFlight) {
        if (listed === LISTED_IN_FLIGHT) break;
        const at = RECORDS_AT + listed * RECORD_BYTES;
        view.setInt32(at, entry.number, true);
        view.setInt32(at + 4, message.attempts, true);
        writeId(this.#bytes, at + 8, message.id);
        listed++;
        written++;
      }
      unlisted += entry.inFlight.size - written;
    }
    ints[LISTED] = listed;
    ints[UNLISTED] = unlisted;
    ints[LAST_ENTRY] = NONE;
    Atomics.add(ints, BEAT, 1);
  }
}

/** One entry on the board. */
export class BoardEntry {
  /**
   * The entry's messages whose outcome is pending past the turn that
   * started them (an asynchronous handler, a batch, a store's answer): the
   * entry adds and deletes them, each heartbeat lists them.
   */
  readonly inFlight: Set<BoardMessage> = new Set();
  readonly #ints: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #leave: (entry: BoardEntry) => void;

  constructor(
    readonly number: number,
    readonly name: EntryName,
    ints: Int32Array,
    bytes: Uint8Array,
    leave: (entry: BoardEntry) => void,
  ) {
    this.#ints = ints;
    this.#bytes = bytes;
    this.#leave = leave;
  }

  /** The thread starts on `message` of this entry (decode, validation, handler). */
  started(message: BoardMessage): void {
    writeId(this.#bytes, LAST_ID_AT, message.id);
    const ints = this.#ints;
    ints[LAST_ATTEMPTS] = message.attempts;
    ints[LAST_PHASE] = 0;
    ints[LAST_ENTRY] = this.number;
  }

  /** The thread starts the worker's `setup()` or `teardown()` for this entry. */
  entered(phase: "setup" | "teardown"): void {
    const ints = this.#ints;
    ints[LAST_PHASE] = PHASES.indexOf(phase);
    ints[LAST_ENTRY] = this.number;
  }

  /** The entry has stopped: the board no longer names it. */
  leave(): void {
    this.inFlight.clear();
    this.#leave(this);
  }
}

function writeId(bytes: Uint8Array, at: number, id: string): void {
  for (let i = 0; i < ID_BYTES; i++) bytes[at + i] = id.charCodeAt(i) & 0xff;
}

function readId(bytes: Uint8Array, at: number): string {
  let end = at + ID_BYTES;
  // An id shorter than 16 characters (only tests make them) was padded with NUL.
  while (end > at && bytes[end - 1] === 0) end--;
  return String.fromCharCode(...bytes.subarray(at, end));
}

/** A message on the board: the entry's number, the message's id and attempts. */
export interface BoardRecord {
  readonly entry: number;
  readonly id: string;
  readonly attempts: number;
}

/** What the board says, read from its buffer. */
export interface StallSnapshot {
  /** The heartbeat: it changes each time the thread turned. */
  readonly beat: number;
  /**
   * What the thread started last since its last heartbeat (`id` and
   * `attempts` for a message, null for `setup` and `teardown`); null when
   * it started nothing since.
   */
  readonly last: (Omit<BoardRecord, "id"> & { id: string | null; phase: BoardPhase }) | null;
  /** The messages in flight at the last heartbeat (at most {@linkcode LISTED_IN_FLIGHT}). */
  readonly inFlight: readonly BoardRecord[];
  /** Messages in flight at the last heartbeat beyond those listed. */
  readonly unlisted: number;
}

/** The heartbeat alone, as the watchdog polls it. */
export function readBeat(buffer: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(buffer), BEAT);
}

/** Reads the whole board, on the watchdog's side. */
export function readStallBoard(buffer: SharedArrayBuffer): StallSnapshot {
  const ints = new Int32Array(buffer);
  const bytes = new Uint8Array(buffer);
  const beat = Atomics.load(ints, BEAT);
  const lastEntry = ints[LAST_ENTRY]!;
  const phase = PHASES[ints[LAST_PHASE]!] ?? "message";
  const last = lastEntry === NONE ? null : {
    entry: lastEntry,
    phase,
    id: phase === "message" ? readId(bytes, LAST_ID_AT) : null,
    attempts: phase === "message" ? ints[LAST_ATTEMPTS]! : 0,
  };
  const listed = Math.min(Math.max(ints[LISTED]!, 0), LISTED_IN_FLIGHT);
  const view = new DataView(buffer);
  const inFlight: BoardRecord[] = [];
  for (let i = 0; i < listed; i++) {
    const at = RECORDS_AT + i * RECORD_BYTES;
    inFlight.push({
      entry: view.getInt32(at, true),
      attempts: view.getInt32(at + 4, true),
      id: readId(bytes, at + 8),
    });
  }
  return { beat, last, inFlight, unlisted: ints[UNLISTED]! };
}
