import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "../../src/nsq/connection_options.ts";
import { createNsqjsReader } from "../../src/nsq/nsqjs.ts";

const OPTIONS: ConnectionOptions = {
  authSecret: null,
  tls: null,
  compression: "none",
  heartbeatIntervalMs: 30_000,
  idleTimeoutMs: 60_000,
};

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + payload.length, 0);
  head.writeInt32BE(type, 4);
  return Buffer.concat([head, payload]);
}

function messagePayload(id: string, body: string): Buffer {
  const fixed = Buffer.alloc(26);
  fixed.writeBigInt64BE(1_700_000_000_000_000_000n, 0);
  fixed.writeUInt16BE(1, 8);
  fixed.write(id, 10, "latin1");
  return Buffer.concat([fixed, Buffer.from(body)]);
}

Deno.test("frames are cut the same however the socket splits them", () => {
  const stream = Buffer.concat([
    frame(2, messagePayload("0000000000000001", "first")),
    frame(0, Buffer.from("_heartbeat_")),
    frame(2, messagePayload("0000000000000002", "")),
    frame(2, messagePayload("0000000000000003", "x".repeat(300))),
  ]);
  for (const size of [1, 2, 3, 7, 8, 9, 26, 45, 100, stream.length]) {
    const reader = createNsqjsReader("127.0.0.1", 1, "t", "c", OPTIONS) as unknown as {
      statemachine: { goto(state: string): void };
      receiveData(data: Buffer): void;
      on(event: string, listener: (payload: Buffer) => void): void;
      write(data: string): void;
    };
    reader.statemachine.goto("READY_RECV");
    const written: string[] = [];
    reader.write = (data) => void written.push(String(data));
    const got: string[] = [];
    reader.on("message", (payload) => {
      got.push(`${payload.toString("latin1", 10, 26)}:${payload.subarray(26).toString()}`);
    });
    for (let at = 0; at < stream.length; at += size) {
      // A copy: nothing may keep pointing into a read buffer the socket reuses.
      reader.receiveData(Buffer.from(stream.subarray(at, at + size)));
    }
    assert.deepEqual(got, [
      "0000000000000001:first",
      "0000000000000002:",
      `0000000000000003:${"x".repeat(300)}`,
    ], `reads of ${size} bytes`);
    assert.deepEqual(written, ["NOP\n"], `reads of ${size} bytes: the heartbeat is answered`);
  }
});
