/**
 * How the dev loop is asked to stop: Ctrl-C or SIGTERM.
 *
 * @module
 */

/**
 * Ctrl-C and SIGTERM, from the start: a signal while NSQ starts must still
 * stop what was started.
 *
 * The daemon stays in the terminal's process group, so Ctrl-C reaches it
 * once, from the terminal; `deno task` forwards that SIGINT to this process
 * as well, so passing it on would make a second signal of one Ctrl-C.
 * SIGTERM is sent to this process alone, so it is passed on.
 */
export class StopRequest implements Disposable {
  requested = false;
  /** The daemon to pass SIGTERM on to, while one runs. */
  daemon: Deno.ChildProcess | null = null;
  #wake = Promise.withResolvers<void>();
  readonly #onSigint = () => this.#request();
  readonly #onSigterm = () => {
    this.#request();
    this.daemon?.kill("SIGTERM");
  };

  constructor() {
    Deno.addSignalListener("SIGINT", this.#onSigint);
    Deno.addSignalListener("SIGTERM", this.#onSigterm);
  }

  /** Resolves at the next stop request or {@linkcode StopRequest.wake}. */
  next(): Promise<void> {
    return this.#wake.promise;
  }

  /** Ends the current {@linkcode StopRequest.next} wait. */
  wake(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers<void>();
  }

  #request(): void {
    this.requested = true;
    this.wake();
  }

  [Symbol.dispose](): void {
    Deno.removeSignalListener("SIGINT", this.#onSigint);
    Deno.removeSignalListener("SIGTERM", this.#onSigterm);
  }
}
