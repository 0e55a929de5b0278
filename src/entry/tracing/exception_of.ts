/**
 * What a span records of an error, whatever was thrown.
 *
 * @module
 */

import { errorText } from "../../error_text.ts";

/** OpenTelemetry takes an Error or a string; a worker may throw anything. */
export function exceptionOf(error: unknown): Error | string {
  return error instanceof Error ? error : errorText(error);
}
