import assert from "node:assert/strict";
import { TokenBucket } from "../../src/nsq/token_bucket.ts";
import { startInProcess } from "../helpers/in_process.ts";
import { startNsq } from "../helpers/nsq/start_nsq.ts";
import { uniqueTopic } from "../helpers/nsq/unique_topic.ts";
import { waitFor } from "../helpers/wait_for.ts";

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
  // A loaded machine can only slow the handling down, so the deadline is
  // generous; what must hold is the upper bound, in every window.
  await waitFor(() => times.length >= 700, { timeoutMs: 30_000, message: "700 handled" });
  await daemon.shutdown();
  // In any 1 s window: at most 200 plus the bucket's capacity (20), which the
  // limiter may lend at once, plus 10 %.
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while (times[last]! - times[first]! >= 1000) first++;
    most = Math.max(most, last - first + 1);
  }
  assert.ok(most <= 242, `${most} messages handled within one second for a limit of 200/s`);
  assert.ok(times.at(-1)! - times[0]! >= 2_500, "700 messages took at least 680 / 200 s");
  const channel = await nsq.channel(topic, "work");
  assert.equal(channel?.timeout_count, 0, "no message held past nsqd's timeout");
  assert.ok((channel?.depth ?? 0) > 1000, "the rest stayed on nsqd");
});
