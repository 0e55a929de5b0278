/**
 * What the span of a delivery and the span of a batch have in common: the
 * context in which each is the active span, for the work done under it.
 *
 * @module
 */

import { type Context, context, type Span } from "@opentelemetry/api";

/** A span and the context in which it is the active one. */
export class ScopedSpan {
  protected readonly span: Span;
  readonly #context: Context;

  constructor(span: Span, context: Context) {
    this.span = span;
    this.#context = context;
  }

  /** Runs `work` with this span active: what it logs, publishes and awaits sees it. */
  run<T>(work: () => T): T {
    return context.with(this.#context, work);
  }
}
