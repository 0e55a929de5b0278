/**
 * The parts of frames that carry a worker's values across the pipe, each
 * written by one side and read back by the other: how a handler ended,
 * what `handleBatch` returned, and the bodies of `ctx.publish*`. What is
 * read back is what the daemon's own code would have found in the child.
 *
 * @module
 */

import { describeError, errorText } from "../error_text.ts";
import { PermanentError } from "../worker/permanent_error.ts";
import type { PublishBody } from "../worker/worker.ts";
import type { FrameReader, FrameWriter } from "./frames.ts";
import {
  BATCH_NOTHING,
  BATCH_OTHER,
  BATCH_RESULTS,
  BODY_BYTES,
  BODY_JSON,
  BODY_STRING,
  RESULT_ERROR,
  RESULT_FINISH,
  RESULT_OTHER,
  RESULT_PERMANENT,
  RESULT_UNDEFINED,
  RETURNED,
  THREW,
  THREW_PERMANENT,
} from "./protocol.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How a handler ended: returned, threw a `PermanentError` (its message) or threw (described). */
export function writeSettled(out: FrameWriter, returned: boolean, error: unknown): void {
  if (returned) out.u8(RETURNED);
  else if (error instanceof PermanentError) out.u8(THREW_PERMANENT).text(errorText(error));
  else out.u8(THREW).text(describeError(error));
}

/** The error of a handler that did not return (`state` read already), as the runner reads it. */
export function readThrown(state: number, frame: FrameReader): Error {
  const text = frame.text();
  return state === THREW_PERMANENT ? new PermanentError(text) : new Error(text);
}

/** What `handleBatch` returned (after `RETURNED`): nothing, one result per item, or else. */
export function writeBatchReturn(out: FrameWriter, value: unknown): void {
  if (value === undefined) {
    out.u8(BATCH_NOTHING);
  } else if (Array.isArray(value)) {
    out.u8(BATCH_RESULTS).u32(value.length);
    for (const result of value) {
      if (result === undefined) out.u8(RESULT_UNDEFINED);
      else if (result === "finish") out.u8(RESULT_FINISH);
      else if (result instanceof PermanentError) out.u8(RESULT_PERMANENT).text(errorText(result));
      else if (result instanceof Error) out.u8(RESULT_ERROR).text(describeError(result));
      else out.u8(RESULT_OTHER).text(describeError(result));
    }
  } else {
    out.u8(BATCH_OTHER).text(describeError(value));
  }
}

/**
 * What `handleBatch` returned, rebuilt so that the batcher finds in it what
 * it would have found in the child: the same results, errors of the same
 * kind with the same text, anything else as its description.
 */
export function readBatchReturn(frame: FrameReader): unknown {
  const shape = frame.u8();
  if (shape === BATCH_NOTHING) return undefined;
  if (shape !== BATCH_RESULTS) return frame.text();
  const results: unknown[] = [];
  for (let i = frame.u32(); i > 0; i--) {
    const kind = frame.u8();
    if (kind === RESULT_UNDEFINED) results.push(undefined);
    else if (kind === RESULT_FINISH) results.push("finish");
    else if (kind === RESULT_PERMANENT) results.push(new PermanentError(frame.text()));
    else if (kind === RESULT_ERROR) results.push(new Error(frame.text()));
    else results.push(frame.text());
  }
  return results;
}

/**
 * Bodies to publish, each tagged as bytes, a string or a JSON value (the
 * daemon's tracing writes a `traceparent` into JSON objects), or the error
 * the daemon's publisher would give for one that is none of these.
 */
export function encodeBodies(bodies: readonly PublishBody[]): [number, Uint8Array][] | Error {
  const encoded: [number, Uint8Array][] = [];
  for (const body of bodies) {
    if (body instanceof Uint8Array) {
      encoded.push([BODY_BYTES, body]);
    } else if (typeof body === "string") {
      encoded.push([BODY_STRING, encoder.encode(body)]);
    } else {
      let json: string | undefined;
      try {
        json = JSON.stringify(body);
      } catch (error) {
        return error instanceof Error ? error : new Error(errorText(error));
      }
      if (json === undefined) {
        return new Error(`cannot publish ${typeof body}: expected bytes, a string or a JSON value`);
      }
      encoded.push([BODY_JSON, encoder.encode(json)]);
    }
  }
  return encoded;
}

/** Writes bodies {@linkcode encodeBodies} made, after their count. */
export function writeBodies(out: FrameWriter, encoded: readonly [number, Uint8Array][]): void {
  out.u32(encoded.length);
  for (const [tag, bytes] of encoded) out.u8(tag).bytes(bytes);
}

/** The bodies as the worker gave them: bytes, a string, or the JSON value. */
export function readBodies(frame: FrameReader): PublishBody[] {
  const bodies: PublishBody[] = [];
  for (let i = frame.u32(); i > 0; i--) {
    const tag = frame.u8();
    const bytes = frame.bytes();
    const text = tag === BODY_BYTES ? "" : decoder.decode(bytes);
    bodies.push(tag === BODY_BYTES ? bytes : tag === BODY_STRING ? text : JSON.parse(text));
  }
  return bodies;
}
