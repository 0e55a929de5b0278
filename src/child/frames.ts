/**
 * The framing of the pipe between the daemon and a child process: each
 * frame is a 4-byte big-endian length, then a 1-byte type, then its
 * payload. Payloads are written with {@linkcode FrameWriter}'s fields and
 * read back with {@linkcode FrameReader}'s: message bodies travel as raw
 * bytes, never as base64 or JSON.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Frames of more than this are refused: a corrupt length must not allocate gigabytes. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

/**
 * Builds frames into one growing buffer; {@linkcode take} hands over what
 * was built, so that a turn's frames leave in one write.
 */
export class FrameWriter {
  #buffer = new Uint8Array(4096);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;
  #frameStart = -1;

  /** Bytes built and not yet taken. */
  get pending(): number {
    return this.#length;
  }

  /** Starts a frame of `type`; its fields follow, and {@linkcode end} closes it. */
  start(type: number): this {
    this.#reserve(5);
    this.#frameStart = this.#length;
    this.#length += 4;
    this.#buffer[this.#length++] = type;
    return this;
  }

  /** Closes the frame {@linkcode start} began, writing its length. */
  end(): void {
    this.#view.setUint32(this.#frameStart, this.#length - this.#frameStart - 4);
    this.#frameStart = -1;
  }

  u8(value: number): this {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  u32(value: number): this {
    this.#reserve(4);
    this.#view.setUint32(this.#length, value);
    this.#length += 4;
    return this;
  }

  f64(value: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value);
    this.#length += 8;
    return this;
  }

  /** Bytes, after their length. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.#reserve(value.length);
    this.#buffer.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  /** A string as UTF-8 bytes, after their length. */
  text(value: string): this {
    // Three bytes per UTF-16 unit at most; the length is written once the size is known.
    this.#reserve(4 + value.length * 3);
    const { written } = encoder.encodeInto(value, this.#buffer.subarray(this.#length + 4));
    this.#view.setUint32(this.#length, written);
    this.#length += 4 + written;
    return this;
  }

  /** The frames built so far, as a copy; the writer starts empty again. */
  take(): Uint8Array {
    const out = this.#buffer.slice(0, this.#length);
    this.#length = 0;
    if (this.#buffer.length > 1 << 20) this.#grow(4096, true);
    return out;
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes > this.#buffer.length) this.#grow(this.#length + bytes, false);
  }

  #grow(atLeast: number, shrink: boolean): void {
    let size = shrink ? atLeast : this.#buffer.length * 2;
    while (size < atLeast) size *= 2;
    const next = new Uint8Array(size);
    if (!shrink) next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
  }
}

/** The fields of one frame, read in the order they were written. */
export class FrameReader {
  readonly type: number;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset: number;

  constructor(type: number, bytes: Uint8Array) {
    this.type = type;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = 0;
  }

  u8(): number {
    return this.#bytes[this.#offset++]!;
  }

  u32(): number {
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }

  f64(): number {
    const value = this.#view.getFloat64(this.#offset);
    this.#offset += 8;
    return value;
  }

  /** Bytes, copied out of the read buffer (which is reused). */
  bytes(): Uint8Array {
    const length = this.u32();
    const value = this.#bytes.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  text(): string {
    const length = this.u32();
    const value = decoder.decode(this.#bytes.subarray(this.#offset, this.#offset + length));
    this.#offset += length;
    return value;
  }
}

/**
 * Cuts a byte stream into frames and gives each to `onFrame`, in order,
 * until the stream ends (or fails); throws on a frame longer than
 * {@linkcode MAX_FRAME_BYTES}.
 */
export async function readFrames(
  stream: ReadableStream<Uint8Array>,
  onFrame: (frame: FrameReader) => void,
): Promise<void> {
  let held = new Uint8Array(0);
  for await (const chunk of stream) {
    let bytes = chunk;
    if (held.length > 0) {
      bytes = new Uint8Array(held.length + chunk.length);
      bytes.set(held);
      bytes.set(chunk, held.length);
    }
    let offset = 0;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (bytes.length - offset >= 4) {
      const length = view.getUint32(offset);
      if (length < 1 || length > MAX_FRAME_BYTES) {
        throw new RangeError(`a frame must hold 1 to ${MAX_FRAME_BYTES} bytes, got ${length}`);
      }
      if (bytes.length - offset - 4 < length) break;
      const start = offset + 4;
      onFrame(new FrameReader(bytes[start]!, bytes.subarray(start + 1, start + length)));
      offset = start + length;
    }
    held = offset === bytes.length ? new Uint8Array(0) : bytes.slice(offset);
  }
}
