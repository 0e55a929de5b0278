/**
 * The process under a {@linkcode import("./child.ts").Child}: spawned, its
 * frames written (a turn's in one write) and read, its stderr logged and
 * its last lines kept, killed once with the reason, and its end told.
 *
 * @module
 */

import { describeError } from "../error_text.ts";
import type { Logger } from "../worker/worker.ts";
import { type FrameReader, FrameWriter, readFrames } from "./frames.ts";
import type { ChildCommand } from "./child_program.ts";
import { type ChildEnd, type ChildEndReason, endReason } from "./child_end.ts";

/** Options of {@linkcode ChildProcess}. */
export interface ChildProcessOptions {
  readonly command: ChildCommand;
  /** The child's environment over this process's (e.g. `DENO_V8_FLAGS`). */
  readonly env: Readonly<Record<string, string>>;
  /** Where its stderr and troubles go (bound to the entry). */
  readonly log: Logger;
  /** Gets each frame it writes, in order. */
  readonly receive: (frame: FrameReader) => void;
  /** Told as soon as it has exited and its output was read, before its stdin is closed. */
  readonly onExit: () => void;
  /** Told how it ended, before {@linkcode ChildProcess.ended} resolves. */
  readonly onEnd: (end: ChildEnd) => void;
}

/** How many lines of a child's stderr are kept to tell why it ended. */
const STDERR_TAIL = 20;

/** One child process, spoken to in frames. */
export class ChildProcess {
  readonly pid: number;
  /** Resolves once it has ended and its output was read. */
  readonly ended: Promise<ChildEnd>;
  #end: ChildEnd | null = null;
  readonly #options: ChildProcessOptions;
  readonly #process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out = new FrameWriter();
  #writing = false;
  #flushQueued = false;
  #killedFor: ChildEndReason | null = null;
  #fatal: string | null = null;
  readonly #stderr: string[] = [];

  constructor(options: ChildProcessOptions) {
    this.#options = options;
    this.#process = new Deno.Command(options.command.command, {
      args: [...options.command.args],
      env: options.env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    liveChildren.add(this.#process);
    this.pid = this.#process.pid;
    this.#writer = this.#process.stdin.getWriter();
    this.ended = this.#watch();
  }

  /** How it ended, once it has (null before). */
  get end(): ChildEnd | null {
    return this.#end;
  }

  /** Starts a frame of `type` to the child; {@linkcode send} closes it. */
  frame(type: number): FrameWriter {
    return this.#out.start(type);
  }

  /** Closes the frame; the frames of a turn go to the child in one write. */
  send(): void {
    this.#out.end();
    if (this.#flushQueued || this.#writing) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  /** The error the child said it is ending with: its end is then a crash, told with it. */
  fatal(error: string): void {
    this.#fatal = error;
  }

  /** Ends the child at once (SIGKILL); the first reason given is the one told. */
  kill(reason: ChildEndReason): void {
    if (this.#end !== null || this.#killedFor !== null) return;
    this.#killedFor = reason;
    try {
      this.#process.kill("SIGKILL");
    } catch {
      // It has just exited.
    }
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false;
    this.#writing = true;
    try {
      while (this.#out.pending > 0 && this.#end === null) {
        await this.#writer.write(this.#out.take());
      }
    } catch {
      // The child is gone: its end is handled where its exit is seen.
    } finally {
      this.#writing = false;
    }
  }

  /** Reads its frames and stderr until it ends, then tells its end. */
  async #watch(): Promise<ChildEnd> {
    const frames = readFrames(this.#process.stdout, this.#options.receive)
      .catch((error) => {
        this.#options.log.error("a child process wrote a bad frame; ending it", {
          child_pid: this.pid,
          error: describeError(error),
        });
        this.kill("crash");
        // Drains the rest so that the process can end.
        return this.#process.stdout.cancel().catch(() => {});
      });
    const stderr = this.#readStderr();
    const status = await this.#process.status;
    await Promise.all([frames, stderr]);
    liveChildren.delete(this.#process);
    this.#options.onExit();
    await this.#writer.close().catch(() => {});
    const end: ChildEnd = {
      reason: endReason(status, this.#killedFor, this.#fatal !== null, this.#stderr),
      code: status.code,
      signal: status.signal,
      error: this.#fatal ?? this.#stderr.join("\n"),
    };
    this.#end = end;
    this.#options.onEnd(end);
    return end;
  }

  async #readStderr(): Promise<void> {
    let partial = "";
    for await (const chunk of this.#process.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.#stderrLine(line);
    }
    if (partial !== "") this.#stderrLine(partial);
  }

  #stderrLine(line: string): void {
    // deno-lint-ignore no-control-regex
    const text = line.replace(/\x1b\[[0-9;]*m/g, "").trimEnd();
    if (text === "") return;
    this.#stderr.push(text);
    if (this.#stderr.length > STDERR_TAIL) this.#stderr.shift();
    this.#options.log.info("child stderr", { child_pid: this.pid, line: text });
  }
}

/** Every child process running, killed if this process exits first. */
const liveChildren = new Set<Deno.ChildProcess>();

globalThis.addEventListener("unload", () => {
  for (const process of liveChildren) {
    try {
      process.kill("SIGKILL");
    } catch {
      // Already ended.
    }
  }
});
