/**
 * Reads a topic back over NSQ TCP with a scripted client on a raw socket, so
 * that what a test reads does not depend on the code under test.
 *
 * @module
 */
import { HOST } from "./nsq_server.ts";

/** nsqd's default `--max-rdy-count`; larger reads go in batches. */
const MAX_RDY = 2500;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const FRAME_RESPONSE = 0;
const FRAME_ERROR = 1;
const FRAME_MESSAGE = 2;

/**
 * A minimal NSQ TCP consumer. It holds each batch of up to RDY messages until
 * the whole batch arrived, so nsqd never sends more than `count`, then FINs the
 * batch; the final `CLS` round trip ensures nsqd processed every FIN before this
 * returns, so stats read afterwards already show them.
 */
export async function consume(
  port: number,
  topic: string,
  channel: string,
  count: number,
  timeoutMs: number,
): Promise<Uint8Array[]> {
  const conn = await Deno.connect({ hostname: HOST, port });
  const frames = new FrameReader(conn);
  const bodies: Uint8Array[] = [];
  let timedOut = false;
  // Closing the connection is the only way to interrupt a pending read.
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  const send = (command: string) => writeAll(conn, encoder.encode(command));
  const fail = (command: string, answer: string) =>
    new Error(`Cannot read topic "${topic}" as nsqd answered ${command} with ${answer}`);
  /** The next frame that is not a heartbeat (those get their NOP); error frames throw. */
  const next = async (command: string): Promise<{ type: number; data: Uint8Array }> => {
    for (;;) {
      const frame = await frames.next();
      if (frame.type === FRAME_ERROR) throw fail(command, decoder.decode(frame.data));
      if (frame.type !== FRAME_RESPONSE || decoder.decode(frame.data) !== "_heartbeat_") {
        return frame;
      }
      await send("NOP\n");
    }
  };
  try {
    await send(`  V2SUB ${topic} ${channel}\n`);
    const subscribed = await next("SUB");
    const answer = decoder.decode(subscribed.data);
    if (subscribed.type !== FRAME_RESPONSE || answer !== "OK") throw fail("SUB", answer);
    let batch = Math.min(count, MAX_RDY);
    await send(`RDY ${batch}\n`);
    while (bodies.length < count) {
      const ids: string[] = [];
      while (ids.length < batch) {
        const { type, data } = await next("FIN/RDY");
        if (type !== FRAME_MESSAGE) continue;
        // Message: timestamp int64, attempts uint16, 16-byte ASCII id, body.
        ids.push(decoder.decode(data.subarray(10, 26)));
        bodies.push(data.slice(26));
      }
      const fins = ids.map((id) => `FIN ${id}\n`).join("");
      // The new RDY goes ahead of the FINs: nsqd refills up to RDY as soon as
      // in-flight drops, so it must already be the smaller, remaining count.
      batch = Math.min(count - bodies.length, MAX_RDY);
      await send(batch === 0 ? `RDY 0\n${fins}CLS\n` : `RDY ${batch}\n${fins}`);
    }
    for (;;) {
      // A message nsqd sent before it saw RDY 0 is skipped; the close requeues it.
      const { type, data } = await next("FIN/CLS");
      if (type !== FRAME_RESPONSE) continue;
      const closing = decoder.decode(data);
      if (closing === "CLOSE_WAIT") return bodies;
      throw fail("CLS", closing);
    }
  } catch (error) {
    if (timedOut) {
      throw new Error(
        `Cannot read topic "${topic}" (channel "${channel}") as only ${bodies.length} of ${count} ` +
          `messages arrived within ${timeoutMs} ms`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Splits an NSQ TCP stream into frames: size int32 BE, type int32 BE, data (size - 4 bytes). */
class FrameReader {
  #buffer = new Uint8Array(0);
  #offset = 0;

  constructor(readonly conn: Deno.Conn) {}

  async next(): Promise<{ type: number; data: Uint8Array }> {
    await this.#fill(4);
    const size = this.#view(4).getInt32(0);
    await this.#fill(4 + size);
    const frame = this.#view(4 + size);
    const type = frame.getInt32(4);
    const data = this.#buffer.subarray(this.#offset + 8, this.#offset + 4 + size);
    this.#offset += 4 + size;
    return { type, data };
  }

  #view(length: number): DataView {
    return new DataView(this.#buffer.buffer, this.#buffer.byteOffset + this.#offset, length);
  }

  async #fill(length: number): Promise<void> {
    while (this.#buffer.length - this.#offset < length) {
      const chunk = new Uint8Array(64 * 1024);
      const read = await this.conn.read(chunk);
      if (read === null) throw new Error("nsqd closed the connection");
      const rest = this.#buffer.subarray(this.#offset);
      const merged = new Uint8Array(rest.length + read);
      merged.set(rest);
      merged.set(chunk.subarray(0, read), rest.length);
      this.#buffer = merged;
      this.#offset = 0;
    }
  }
}
