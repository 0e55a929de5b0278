/**
 * An over-eager scraper in its own process, as a real one would be: polls
 * `/metrics` and `/stats` of `<base>` at `<per-second>` requests in all for
 * `<seconds>`, prints `polling` when it starts and then one JSON line,
 * `{"requests":…,"perSecond":…}`.
 *
 * `deno run --allow-net=127.0.0.1 admin_poller_main.ts <base> <per-second> <seconds>`
 *
 * @module
 */

import { startPolling } from "./admin_abuse.ts";

const [base, perSecond, seconds] = Deno.args;
if (base === undefined || !(Number(perSecond) > 0) || !(Number(seconds) > 0)) {
  console.error(
    `expected <base> <per-second> <seconds>, found ${JSON.stringify(Deno.args)}`,
  );
  Deno.exit(2);
}
const polling = startPolling(base, Number(perSecond));
console.log("polling");
// The length of the load is what the caller asked for.
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
console.log(JSON.stringify(await polling.stop()));
