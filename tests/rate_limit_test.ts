import assert from "node:assert/strict";
import { TokenBucket } from "../src/nsq/token_bucket.ts";
import { startInProcess } from "./helpers/in_process.ts";
import { startNsq, uniqueTopic, waitFor } from "./helpers/nsq.ts";

Deno.test("a token bucket refills at its rate and lends on credit", () => {
  let now = 0;
  const bucket = new TokenBucket(200, 1000, () => now);
  assert.equal(bucket.capacity, 20);
  assert.equal(bucket.available(), 20);
  for (let i = 0; i < 25; i++) bucket.take();
  assert.equal(bucket.available(), 0);
  assert.equal(bucket.msUntilNext(), 30); // 5 owed + 1 at 0.2 per ms
  now += 30;
  assert.equal(bucket.available(), 1);
  now += 10_000;
  assert.equal(bucket.available(), 20, "never more than the capacity");
  assert.throws(() => new TokenBucket(0, 1000), /above 0/);
});

Deno.test("rate_limit keeps the handled rate within 10 % of the limit, through RDY", async () => {
  await using nsq = await startNsq();
  const topic = uniqueTopic("rate");
  await nsq.publishMany(topic, Array.from({ length: 3000 }, (_, i) => `{"n":${i}}`));
  const times: number[] = [];
  await using daemon = await startInProcess({
    yaml: `
nsq:
  nsqd_tcp_addresses: [${nsq.nsqds[0]!.tcpAddress}]
workers:
  - topic: ${topic}
    channel: work
    worker: test/worker
    max_in_flight: 50
    rate_limit: 200/s
`,
    workers: { "test/worker": { handle: () => void times.push(performance.now()) } },
  });
  await waitFor(() => times.length >= 700, { timeoutMs: 15_000 });
  await daemon.shutdown();
  // The first capacity's worth comes at once; the rate is measured after it.
  const steady = times.slice(100, 700);
  const rate = (steady.length - 1) / ((steady.at(-1)! - steady[0]!) / 1000);
  assert.ok(rate > 180 && rate < 220, `measured ${rate.toFixed(1)} msg/s for a limit of 200/s`);
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.timeout_count, 0, "no message held past nsqd's timeout");
  assert.ok((channel?.depth ?? 0) > 1000, "the rest stayed on nsqd");
});
