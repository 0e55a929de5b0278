/**
 * Compression streams whose errors are heard.
 *
 * @module
 */

// deno-lint-ignore-file no-explicit-any
import { asError } from "../../error_text.ts";

/**
 * nsqjs's connection with its inflater's and deflater's errors failing the
 * connection: the socket's end ends the inflater mid-stream, which zlib
 * reports as "unexpected end of file", and unheard, that error would crash
 * the process.
 */
export function withCompressionErrors(base: any): any {
  return class extends base {
    startCompression(inflater: any, deflater: any): void {
      const onError = (error: unknown) => this.statemachine.goto("ERROR", asError(error));
      inflater.on("error", onError);
      deflater.on("error", onError);
      super.startCompression(inflater, deflater);
    }
  };
}
