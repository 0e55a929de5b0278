/**
 * A spawned nsqd or nsqlookupd process: its bounded output (for the error when
 * it does not come up or dies) and the addresses it logged it listens on.
 *
 * @module
 */
import { trackChild } from "../children.ts";

const STOP_GRACE_MS = 10_000;
const OUTPUT_HEAD_LINES = 10;
const OUTPUT_TAIL_LINES = 40;
const OUTPUT_LINE_CHARS = 2000;

/** A spawned NSQ process, its bounded output, and the addresses it logged. */
export class ChildProc {
  readonly #child: Deno.ChildProcess;
  /** The first lines (flag errors, startup) and a bounded tail (what led to a crash). */
  readonly #head: string[] = [];
  readonly #tail: string[] = [];
  #dropped = 0;
  /** "TCP"/"HTTP" → "127.0.0.1:PORT", from nsq's "TCP: listening on ..." lines. */
  readonly listening = new Map<string, string>();
  status: Deno.CommandStatus | null = null;
  /** Resolves once the process exited and its output is drained. */
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(readonly label: string, bin: string, args: readonly string[]) {
    this.#child = new Deno.Command(bin, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.#child;
    trackChild(child);
    const status = child.status.then((status) => {
      this.status = status;
      return status;
    });
    this.exited = Promise.all([status, this.#drain(child.stdout), this.#drain(child.stderr)])
      .then(([status]) => status);
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#onLine(line);
    }
    if (partial !== "") this.#onLine(partial);
  }

  #onLine(line: string): void {
    const match = /\b(TCP|HTTP): listening on (\S+)/.exec(line);
    if (match?.[1] && match[2] && !this.listening.has(match[1])) {
      this.listening.set(match[1], match[2]);
    }
    const kept = line.length > OUTPUT_LINE_CHARS ? `${line.slice(0, OUTPUT_LINE_CHARS)}…` : line;
    if (this.#head.length < OUTPUT_HEAD_LINES) {
      this.#head.push(kept);
      return;
    }
    this.#tail.push(kept);
    if (this.#tail.length > OUTPUT_TAIL_LINES) {
      this.#tail.shift();
      this.#dropped++;
    }
  }

  /** The first and last lines of output, formatted for an error message. */
  describeOutput(): string {
    const skipped = this.#dropped === 0 ? [] : [`[… ${this.#dropped} lines …]`];
    const lines = [...this.#head, ...skipped, ...this.#tail];
    return `--- ${this.label} output ---\n${lines.join("\n")}\n--- end of ${this.label} output ---`;
  }

  /** Signals the process (unless it already exited) and waits for exit; escalates to SIGKILL. */
  async terminate(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    // A suspended process acts on no signal but SIGKILL until it runs again.
    this.#signal("SIGCONT");
    this.#signal(signal);
    if (signal === "SIGKILL") {
      await this.exited;
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), STOP_GRACE_MS)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#signal("SIGKILL");
      await this.exited;
    }
  }

  /** Sends `signal` unless the process already exited. */
  signal(signal: Deno.Signal): void {
    this.#signal(signal);
  }

  #signal(signal: Deno.Signal): void {
    if (this.status !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited between the check and the kill; exited resolves regardless.
    }
  }
}
