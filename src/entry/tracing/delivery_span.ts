/**
 * The CONSUMER span of one delivery, ended with the outcome its message got.
 *
 * @module
 */

import { SpanStatusCode } from "@opentelemetry/api";
import type { Outcome } from "../../runner/outcome.ts";
import { ScopedSpan } from "./scoped_span.ts";

/** The CONSUMER span of one delivery, from its receipt to its answer. */
export class DeliverySpan extends ScopedSpan {
  /** Records the outcome (a failure as the span's error status) and ends the span; never throws. */
  end(outcome: Outcome): void {
    try {
      this.#end(outcome);
    } catch {
      // The message is answered whatever becomes of its span.
    }
  }

  #end(outcome: Outcome): void {
    const span = this.span;
    span.setAttribute("nsqworker.outcome", outcome.kind);
    if (outcome.kind === "retry" || outcome.kind === "dead") {
      if (outcome.kind === "dead") span.setAttribute("nsqworker.dead_reason", outcome.reason);
      span.setAttribute("error.type", outcome.kind === "dead" ? outcome.reason : "retry");
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    }
    span.end();
  }
}
