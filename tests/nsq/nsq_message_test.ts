import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type MessageConnection, NsqMessage } from "../../src/nsq/nsq_message.ts";

/** A message frame's payload: timestamp (ns), attempts, id, body. */
function payload(timestampNs: bigint, attempts: number, id: string, body: string): Buffer {
  const bytes = Buffer.alloc(26 + Buffer.byteLength(body));
  bytes.writeBigInt64BE(timestampNs, 0);
  bytes.writeUInt16BE(attempts, 8);
  bytes.write(id, 10, "latin1");
  bytes.write(body, 26);
  return bytes;
}

function connection(sent: string[]): MessageConnection {
  return {
    msgTimeoutMs: 60_000,
    idScope: "t/c@127.0.0.1:4150",
    address: "127.0.0.1:4150",
    canRespond: true,
    send: (command) => void sent.push(command),
    answered: () => true,
  };
}

Deno.test("a message frame's payload gives its id, attempts, timestamp and body", () => {
  // 999,999 ns past a millisecond, beyond what a double holds exactly: the millisecond stays.
  const bytes = payload(1_795_975_074_994_999_999n, 513, "0a1b2c3d4e5f678\xff", "hello");
  const message = new NsqMessage(bytes, connection([]));
  assert.equal(message.id, "0a1b2c3d4e5f678\xff");
  assert.equal(message.attempts, 513);
  assert.equal(message.timestamp, 1_795_975_074_994);
  assert.ok(message.body instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(message.body), "hello");
  // A view of the frame, not a copy.
  bytes[26] = "j".charCodeAt(0);
  assert.equal(new TextDecoder().decode(message.body), "jello");
});

Deno.test("a message answers once, with its id", () => {
  const sent: string[] = [];
  const message = new NsqMessage(payload(0n, 1, "0a1b2c3d4e5f6789", ""), connection(sent));
  assert.equal(message.body.length, 0);
  message.touch();
  assert.equal(message.finish(), true);
  assert.equal(message.requeue(10), false);
  assert.deepEqual(sent, ["TOUCH 0a1b2c3d4e5f6789\n", "FIN 0a1b2c3d4e5f6789\n"]);
});
