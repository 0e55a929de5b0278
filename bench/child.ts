/**
 * The bench's child processes: spawned with bounded output capture, stopped
 * with SIGTERM then SIGKILL, and all killed by {@linkcode killAll} when the
 * bench ends, fails or is interrupted.
 *
 * @module
 */

const TAIL_LINES = 40;
const LINE_CHARS = 500;
const STOP_GRACE_MS = 10_000;

const live = new Set<Child>();

/** What {@linkcode spawn} runs. */
export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Keep stdin open as a pipe (default true). The bench's own scripts exit
   * when it reaches EOF, so they die with the bench even if it is killed.
   */
  readonly stdinPipe?: boolean;
  /** Called for each stdout line (the daemon's log, a reader's report). */
  readonly onLine?: (line: string) => void;
}

/** A running child process. */
export class Child {
  readonly label: string;
  readonly pid: number;
  /** Resolves once the process exited and its output is read. */
  readonly exited: Promise<Deno.CommandStatus>;
  status: Deno.CommandStatus | null = null;
  readonly #process: Deno.ChildProcess;
  readonly #tail: string[] = [];
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(label: string, command: string, args: readonly string[], options: SpawnOptions) {
    this.label = label;
    const { stdinPipe = true } = options;
    this.#process = new Deno.Command(command, {
      args: [...args],
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { NO_COLOR: "1", ...options.env },
      stdin: stdinPipe ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#process.pid;
    if (stdinPipe) this.#stdin = this.#process.stdin.getWriter();
    live.add(this);
    const status = this.#process.status.then((status) => {
      this.status = status;
      live.delete(this);
      return status;
    });
    this.exited = Promise.all([
      status,
      this.#read(this.#process.stdout, options.onLine),
      this.#read(this.#process.stderr, undefined),
    ]).then(([status]) => status);
  }

  /** The last lines of stdout and stderr, interleaved as they arrived. */
  get tail(): string {
    return this.#tail.join("\n");
  }

  async #read(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#line(line, onLine);
    }
    if (partial !== "") this.#line(partial, onLine);
  }

  #line(line: string, onLine?: (line: string) => void): void {
    this.#tail.push(line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    onLine?.(line);
  }

  /** Sends a signal unless it already exited. */
  signal(signal: Deno.Signal): void {
    if (this.status !== null) return;
    try {
      this.#process.kill(signal);
    } catch {
      // It exited between the check and the kill.
    }
  }

  /**
   * SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once it
   * exited. Stdin stays open meanwhile: its EOF would make the bench's own
   * scripts exit at once instead of shutting down gracefully.
   */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = STOP_GRACE_MS,
  ): Promise<Deno.CommandStatus> {
    this.signal(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs)),
    ]);
    clearTimeout(timer);
    if (late) this.signal("SIGKILL");
    const status = await this.exited;
    await this.#closeStdin();
    return status;
  }

  async #closeStdin(): Promise<void> {
    const stdin = this.#stdin;
    this.#stdin = null;
    await stdin?.close().catch(() => {/* it exited and closed its end */});
  }
}

/** Spawns `command`; the child is killed by {@linkcode killAll} if still running. */
export function spawn(
  label: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Child {
  return new Child(label, command, args, options);
}

/** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function killAll(graceMs = 2_000): Promise<void> {
  await Promise.all([...live].map((child) => child.stop("SIGTERM", graceMs)));
}

/** Runs a command to completion and returns its output; throws with it on failure. */
export async function run(
  label: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string> {
  const child = spawn(label, command, args, {
    stdinPipe: false,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const timer = setTimeout(() => child.signal("SIGKILL"), options.timeoutMs ?? 300_000);
  const status = await child.exited;
  clearTimeout(timer);
  if (!status.success) {
    throw new Error(`${label} failed (exit code ${status.code}):\n${child.tail}`);
  }
  return child.tail;
}

/** A short command's whole stdout, or "" when it cannot run (for reading /proc). */
export async function output(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(command, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout);
  } catch {
    return "";
  }
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const done = () => {
      signal?.removeEventListener("abort", abort);
      resolve();
    };
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", abort, { once: true });
  });
}
