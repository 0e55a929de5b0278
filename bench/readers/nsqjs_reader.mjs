/**
 * A bare nsqjs Reader that finishes every message: the `nsqjs-deno` and
 * `nsqjs-node` peers of the throughput bench. Plain JavaScript, so that
 * Deno and Node.js run the very same code; each runtime's entry script
 * passes in its copy of nsqjs and the arguments.
 *
 * Arguments: `--nsqd HOST:PORT --topic T --channel C --max-in-flight N`.
 */

/** Parses `--name value` pairs. */
export function parseFlags(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (!name?.startsWith("--") || value === undefined) {
      throw new Error(`expected --name value pairs, got ${JSON.stringify(argv)}`);
    }
    flags[name.slice(2)] = value;
  }
  for (const required of ["nsqd", "topic", "channel", "max-in-flight"]) {
    if (flags[required] === undefined) throw new Error(`--${required} is required`);
  }
  return flags;
}

/** Starts the reader; `log` receives status lines. */
export function startReader(nsq, flags, log) {
  const reader = new nsq.Reader(flags.topic, flags.channel, {
    nsqdTCPAddresses: [flags.nsqd],
    maxInFlight: Number(flags["max-in-flight"]),
  });
  reader.on("message", (message) => message.finish());
  reader.on("nsqd_connected", () => log("connected"));
  reader.on("error", (error) => log(`error: ${error?.message ?? error}`));
  reader.connect();
  return reader;
}
