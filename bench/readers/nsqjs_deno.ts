/**
 * The `nsqjs-deno` peer: nsqjs_reader.mjs on Deno, with the nsqjs of the
 * project's import map.
 *
 * @module
 */

// @ts-types="./nsqjs_reader.d.mts"
import { parseFlags, startReader } from "./nsqjs_reader.mjs";
import nsq from "nsqjs/lib/nsq.js";
import { exitWithParent } from "../stdin_watch.ts";

exitWithParent(30 * 60_000);
startReader(nsq, parseFlags(Deno.args), (line: string) => console.log(line));
