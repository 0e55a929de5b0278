import assert from "node:assert/strict";
import { NSQD_LIMITS } from "../../src/config/nsqd_limits.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";

/** POSTs to nsqd's HTTP API and returns the status; the body is read so nothing leaks. */
async function post(url: string, body: Uint8Array<ArrayBuffer>): Promise<number> {
  const response = await fetch(url, { method: "POST", body });
  await response.body?.cancel();
  return response.status;
}

Deno.test("NSQD_LIMITS are a real nsqd's defaults: at the limit taken, one over refused", async () => {
  await using nsq = await startNsq({ lookupd: false });
  const base = nsq.nsqds[0]!.httpUrl;
  const topic = uniqueTopic("limits");
  const { msgBytes, bodyBytes, deferMs } = NSQD_LIMITS;

  assert.equal(await post(`${base}/pub?topic=${topic}`, new Uint8Array(msgBytes).fill(1)), 200);
  assert.equal(await post(`${base}/pub?topic=${topic}`, new Uint8Array(msgBytes + 1).fill(1)), 413);

  // A binary MPUB body: a 4-byte count, then each message as a 4-byte size and its bytes.
  const mpub = (total: number): Uint8Array<ArrayBuffer> => {
    const size = 100_000;
    const count = Math.floor((total - 4) / (size + 4));
    const rest = total - 4 - count * (size + 4);
    const sizes = [...Array(count).fill(size), ...(rest > 4 ? [rest - 4] : [])];
    assert.equal(4 + sizes.reduce((sum, n) => sum + 4 + n, 0), total);
    const body = new Uint8Array(total).fill(1);
    const view = new DataView(body.buffer);
    view.setUint32(0, sizes.length);
    let at = 4;
    for (const n of sizes) {
      view.setUint32(at, n);
      at += 4 + n;
    }
    return body;
  };
  assert.equal(await post(`${base}/mpub?topic=${topic}&binary=true`, mpub(bodyBytes)), 200);
  assert.equal(await post(`${base}/mpub?topic=${topic}&binary=true`, mpub(bodyBytes + 1)), 413);

  const one = new Uint8Array([1]);
  assert.equal(await post(`${base}/pub?topic=${topic}&defer=${deferMs}`, one), 200);
  assert.equal(await post(`${base}/pub?topic=${topic}&defer=${deferMs + 1}`, one), 400);
});
