/**
 * The `raw-deno` peer: an NSQ consumer on bare `Deno.connect` that speaks
 * just enough of the protocol to finish messages (magic, optional IDENTIFY,
 * SUB, RDY, FIN, NOP for heartbeats). It answers every message of a read
 * with one write, as go-nsq's bench_reader does with its buffered writer,
 * so it shows what Deno itself can do on one connection, without nsqjs.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/probe_raw_reader.ts \
 *   --nsqd 127.0.0.1:4150 --topic t --channel c --max-in-flight 200 \
 *   [--identify] [--output-buffer-timeout MS]
 * ```
 *
 * With `--latency-out FILE` (and write permission for it) it also reads each
 * body as `{"t": <publish time in µs>}`, keeps receive − publish time, and
 * writes them to FILE as a JSON array when it gets SIGTERM: the reference
 * of the latency section.
 *
 * @module
 */

import { exitWithParent } from "./stdin_watch.ts";

const FRAME_RESPONSE = 0;
const FRAME_ERROR = 1;
const FRAME_MESSAGE = 2;
const ID_OFFSET = 10;
const ID_LENGTH = 16;
const FIN_LENGTH = 4 + ID_LENGTH + 1;
const READ_SIZE = 256 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const FIN = encoder.encode("FIN ");
const NOP = encoder.encode("NOP\n");
const HEARTBEAT = "_heartbeat_";

interface Flags {
  nsqd: string;
  topic: string;
  channel: string;
  maxInFlight: number;
  identify: boolean;
  /** Asked of nsqd in IDENTIFY (implies --identify); null: nsqd's default. */
  outputBufferTimeoutMs: number | null;
  latencyOut: string | null;
}

function parseFlags(args: readonly string[]): Flags {
  const values = new Map<string, string>();
  let identify = false;
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!;
    if (name === "--identify") {
      identify = true;
      continue;
    }
    const value = args[++i];
    if (!name.startsWith("--") || value === undefined) {
      throw new Error(`expected --name value pairs, got ${JSON.stringify(args)}`);
    }
    values.set(name.slice(2), value);
  }
  const get = (name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`--${name} is required`);
    return value;
  };
  return {
    nsqd: get("nsqd"),
    topic: get("topic"),
    channel: get("channel"),
    maxInFlight: Number(get("max-in-flight")),
    identify: identify || values.has("output-buffer-timeout"),
    outputBufferTimeoutMs: values.has("output-buffer-timeout")
      ? Number(values.get("output-buffer-timeout"))
      : null,
    latencyOut: values.get("latency-out") ?? null,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function identifyCommand(outputBufferTimeoutMs: number | null): Uint8Array {
  const body = encoder.encode(JSON.stringify({
    client_id: "raw-deno",
    hostname: "raw-deno",
    user_agent: "nsqworker-bench-raw/1",
    feature_negotiation: false,
    ...(outputBufferTimeoutMs === null ? {} : { output_buffer_timeout: outputBufferTimeoutMs }),
  }));
  const head = encoder.encode("IDENTIFY\n");
  const command = new Uint8Array(head.length + 4 + body.length);
  command.set(head);
  new DataView(command.buffer).setInt32(head.length, body.length);
  command.set(body, head.length + 4);
  return command;
}

/** Reads frames from a connection into one growing buffer, without copying message bodies out. */
class Frames {
  #buffer = new Uint8Array(READ_SIZE * 2);
  #start = 0;
  #end = 0;

  constructor(readonly conn: Deno.Conn) {}

  /** Reads once more from the socket; false at EOF. */
  async fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#buffer.length - this.#end < READ_SIZE) {
      const bigger = new Uint8Array(this.#buffer.length * 2);
      bigger.set(this.#buffer.subarray(0, this.#end));
      this.#buffer = bigger;
    }
    const read = await this.conn.read(this.#buffer.subarray(this.#end));
    if (read === null) return false;
    this.#end += read;
    return true;
  }

  /** Calls `each(type, data)` for every complete frame buffered. */
  drain(each: (type: number, data: Uint8Array) => void): void {
    const buffer = this.#buffer;
    const view = new DataView(buffer.buffer);
    while (this.#end - this.#start >= 8) {
      const size = view.getInt32(this.#start);
      if (this.#end - this.#start < 4 + size) return;
      const type = view.getInt32(this.#start + 4);
      each(type, buffer.subarray(this.#start + 8, this.#start + 4 + size));
      this.#start += 4 + size;
    }
  }

  /** The next frame, reading as needed (for the handshake). */
  async next(): Promise<{ type: number; text: string }> {
    for (;;) {
      let frame: { type: number; text: string } | null = null;
      const view = new DataView(this.#buffer.buffer);
      if (this.#end - this.#start >= 8) {
        const size = view.getInt32(this.#start);
        if (this.#end - this.#start >= 4 + size) {
          const type = view.getInt32(this.#start + 4);
          const data = this.#buffer.subarray(this.#start + 8, this.#start + 4 + size);
          frame = { type, text: decoder.decode(data) };
          this.#start += 4 + size;
        }
      }
      if (frame) return frame;
      if (!(await this.fill())) throw new Error("nsqd closed the connection");
    }
  }
}

async function expectOk(frames: Frames, command: string): Promise<void> {
  for (;;) {
    const { type, text } = await frames.next();
    if (type === FRAME_RESPONSE && text === HEARTBEAT) continue;
    if (type === FRAME_RESPONSE && text === "OK") return;
    throw new Error(`nsqd answered ${command} with ${text}`);
  }
}

async function consume(flags: Flags): Promise<void> {
  const [hostname, port] = [
    flags.nsqd.slice(0, flags.nsqd.lastIndexOf(":")),
    Number(flags.nsqd.slice(flags.nsqd.lastIndexOf(":") + 1)),
  ];
  const conn = await Deno.connect({ hostname, port });
  conn.setNoDelay(true);
  const frames = new Frames(conn);
  await writeAll(conn, encoder.encode("  V2"));
  if (flags.identify) {
    await writeAll(conn, identifyCommand(flags.outputBufferTimeoutMs));
    await expectOk(frames, "IDENTIFY");
  }
  await writeAll(conn, encoder.encode(`SUB ${flags.topic} ${flags.channel}\n`));
  await expectOk(frames, "SUB");
  await writeAll(conn, encoder.encode(`RDY ${flags.maxInFlight}\n`));
  console.log("connected");

  let out = new Uint8Array(FIN_LENGTH * 1024);
  let length = 0;
  let finished = 0;
  const latencies: number[] | null = flags.latencyOut === null ? null : [];
  if (latencies !== null) {
    Deno.addSignalListener("SIGTERM", () => {
      Deno.writeTextFileSync(flags.latencyOut!, JSON.stringify(latencies.map(Math.round)));
      Deno.exit(0);
    });
  }
  const reserve = (bytes: number) => {
    if (length + bytes <= out.length) return;
    const bigger = new Uint8Array(Math.max(out.length * 2, length + bytes));
    bigger.set(out.subarray(0, length));
    out = bigger;
  };
  const onFrame = (type: number, data: Uint8Array) => {
    if (type === FRAME_MESSAGE) {
      reserve(FIN_LENGTH);
      out.set(FIN, length);
      out.set(data.subarray(ID_OFFSET, ID_OFFSET + ID_LENGTH), length + 4);
      out[length + FIN_LENGTH - 1] = 0x0a;
      length += FIN_LENGTH;
      finished++;
      if (latencies !== null) {
        const now = (performance.timeOrigin + performance.now()) * 1000;
        latencies.push(now - JSON.parse(decoder.decode(data.subarray(ID_OFFSET + ID_LENGTH))).t);
      }
    } else if (type === FRAME_RESPONSE && decoder.decode(data) === HEARTBEAT) {
      reserve(NOP.length);
      out.set(NOP, length);
      length += NOP.length;
    } else if (type === FRAME_ERROR) {
      console.error(`nsqd error: ${decoder.decode(data)}`);
    }
  };
  try {
    while (await frames.fill()) {
      frames.drain(onFrame);
      if (length > 0) {
        await writeAll(conn, out.subarray(0, length));
        length = 0;
      }
    }
  } finally {
    console.log(`finished ${finished}`);
  }
}

if (import.meta.main) {
  exitWithParent(30 * 60_000);
  await consume(parseFlags(Deno.args));
}
