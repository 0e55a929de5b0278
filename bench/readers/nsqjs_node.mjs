/**
 * The `nsqjs-node` peer: nsqjs_reader.mjs on Node.js, with the nsqjs that
 * the bench installed under `.cache/bench/node/` (the first argument is that
 * folder). Exits when the bench closes its stdin.
 */
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseFlags, startReader } from "./nsqjs_reader.mjs";

const [nodeDir, ...argv] = process.argv.slice(2);
const require = createRequire(join(resolve(nodeDir), "package.json"));
const nsq = require("nsqjs");

setTimeout(() => process.exit(3), 30 * 60_000).unref();
process.stdin.on("end", () => process.exit(3));
process.stdin.on("close", () => process.exit(3));
process.stdin.resume();
startReader(nsq, parseFlags(argv), (line) => console.log(line));
