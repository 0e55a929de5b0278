/**
 * Runs the nsqworker command line as a child process, the way an operator
 * does, with named permissions only: `--allow-net --allow-read --allow-env
 * --allow-sys=hostname`, and `--allow-write` limited to the test's temporary
 * directory. Output is collected line by line so tests can wait for a log
 * line instead of sleeping.
 *
 * ```ts
 * Deno.test("the daemon drains on SIGTERM", async () => {
 *   await using dir = await TempDir.create();
 *   await using daemon = await startDaemon(dir, { nsq: { nsqd_tcp_addresses: [nsqd] }, workers });
 *   await daemon.waitForLine((line) => line.includes("connected to nsqd"));
 *   daemon.signal("SIGTERM");
 *   assert.equal((await daemon.status).code, 0);
 * });
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { trackChild } from "./children.ts";

/** The repository root. */
export const REPO_DIR: string = fileURLToPath(new URL("../../", import.meta.url));

/** The scripts a child can run. */
const ENTRY_POINTS = {
  /** The real command line, with the modules of `workers/`. */
  main: join(REPO_DIR, "main.ts"),
  /** The same command line with the test workers of `tests/fixtures/workers/`. */
  fixture: join(REPO_DIR, "tests", "fixtures", "daemon_main.ts"),
  /** The stall watchdog alone, on a thread that runs the steps it is given. */
  stall: join(REPO_DIR, "tests", "fixtures", "stall_main.ts"),
} as const;

const DEFAULT_WAIT_MS = 15_000;
const OUTPUT_TAIL_LINES = 30;

/** A temporary directory that is removed, with its contents, on dispose. */
export class TempDir implements AsyncDisposable {
  private constructor(readonly path: string) {}

  /** Creates an empty directory under the system's temporary folder. */
  static async create(): Promise<TempDir> {
    return new TempDir(await Deno.makeTempDir({ prefix: "nsqworker_test_" }));
  }

  /** The path of `name` inside the directory. */
  join(name: string): string {
    return join(this.path, name);
  }

  /**
   * Writes a config file and returns its path. An object is written as JSON,
   * which is YAML too; a string is written as it is.
   */
  async writeConfig(
    config: string | Record<string, unknown>,
    name = "config.yaml",
  ): Promise<string> {
    const path = this.join(name);
    const text = typeof config === "string" ? config : `${JSON.stringify(config, null, 2)}\n`;
    await Deno.writeTextFile(path, text);
    return path;
  }

  /** The lines of a text file, without the empty one after the last newline; none if it is missing. */
  async readLines(name: string): Promise<string[]> {
    try {
      const text = await Deno.readTextFile(this.join(name));
      return text.split("\n").filter((line) => line !== "");
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.path, { recursive: true });
  }
}

/** Options of {@linkcode spawnCli}. */
export interface SpawnOptions {
  /**
   * `"fixture"` (default): `tests/fixtures/daemon_main.ts`; `"main"`: the real `main.ts`;
   * `"stall"`: `tests/fixtures/stall_main.ts`.
   */
  readonly entry?: keyof typeof ENTRY_POINTS;
  /** The only directory the child may write to; it gets no write permission without one. */
  readonly writeDir?: string;
  /** Working directory; defaults to `writeDir`, else the repository root. */
  readonly cwd?: string;
  /** Added to the inherited environment. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Adds `--allow-sys=hostname` (default true), as the compiled binary has
   * (tools/compile.ts): nsqjs puts the host name in IDENTIFY.
   */
  readonly sysHostname?: boolean;
  /**
   * Adds `--allow-run` for this Deno executable only, which an entry with
   * `processes` needs to start its children (default false).
   */
  readonly runSelf?: boolean;
}

/** Options of {@linkcode CliProcess.waitForLines}. */
export interface WaitForLineOptions {
  /** Default `"stdout"`. */
  readonly stream?: "stdout" | "stderr";
  /** Default 15 000. */
  readonly timeoutMs?: number;
}

interface Waiter {
  readonly stream: "stdout" | "stderr";
  readonly predicate: (line: string) => boolean;
  readonly count: number;
  readonly found: string[];
  readonly resolve: (lines: string[]) => void;
  readonly reject: (error: Error) => void;
}

/** A running command line; disposing of it kills it if it still runs. */
export class CliProcess implements AsyncDisposable {
  /** Every line written to stdout so far. */
  readonly stdout: string[] = [];
  /** Every line written to stderr so far. */
  readonly stderr: string[] = [];
  /** Resolves once the process exited and all its output has been read. */
  readonly status: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #label: string;
  #waiters = new Set<Waiter>();
  #exited: Deno.CommandStatus | null = null;

  constructor(args: readonly string[], options: SpawnOptions = {}) {
    const { entry = "fixture", writeDir, env = {}, sysHostname = true, runSelf = false } = options;
    const permissions = [
      "--allow-net",
      "--allow-read",
      "--allow-env",
      ...(writeDir === undefined ? [] : [`--allow-write=${writeDir}`]),
      ...(sysHostname ? ["--allow-sys=hostname"] : []),
      ...(runSelf ? [`--allow-run=${Deno.execPath()}`] : []),
    ];
    const denoArgs = [
      "run",
      "--no-prompt",
      ...permissions,
      `--config=${join(REPO_DIR, "deno.json")}`,
      ENTRY_POINTS[entry],
      ...args,
    ];
    this.#label = `nsqworker ${args.join(" ")}`;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: denoArgs,
      cwd: options.cwd ?? writeDir ?? REPO_DIR,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.#child;
    trackChild(child);
    this.status = Promise.all([
      child.status,
      this.#read(child.stdout, "stdout"),
      this.#read(child.stderr, "stderr"),
    ]).then(([status]) => {
      this.#exited = status;
      for (const waiter of this.#waiters) {
        waiter.reject(this.#failure(`${this.#label} exited (code ${status.code}) before`, waiter));
      }
      this.#waiters.clear();
      return status;
    });
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** The exit status once the process exited and its output was read, else null. */
  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** Sends `signal` unless the process already exited. */
  signal(signal: Deno.Signal): void {
    if (this.exited !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // It exited meanwhile; `status` resolves regardless.
    }
  }

  /** The first line (seen already or to come) for which `predicate` is true. */
  async waitForLine(
    predicate: (line: string) => boolean,
    options: WaitForLineOptions = {},
  ): Promise<string> {
    const [line] = await this.waitForLines(predicate, 1, options);
    return line!;
  }

  /**
   * The first `count` lines for which `predicate` is true. Rejects after the
   * timeout or when the process exits first, with the output's last lines.
   */
  waitForLines(
    predicate: (line: string) => boolean,
    count: number,
    options: WaitForLineOptions = {},
  ): Promise<string[]> {
    const { stream = "stdout", timeoutMs = DEFAULT_WAIT_MS } = options;
    const found = this[stream].filter(predicate).slice(0, count);
    if (found.length >= count) return Promise.resolve(found);
    const { promise, resolve, reject } = Promise.withResolvers<string[]>();
    const waiter: Waiter = { stream, predicate, count, found, resolve, reject };
    if (this.exited !== null) {
      reject(this.#failure(`${this.#label} exited before`, waiter));
      return promise;
    }
    this.#waiters.add(waiter);
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(this.#failure(`Timed out after ${timeoutMs} ms`, waiter));
    }, timeoutMs);
    return promise.finally(() => clearTimeout(timer));
  }

  /** Kills the process if it still runs and waits until it is gone. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.signal("SIGKILL");
    await this.status;
  }

  async #read(stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr"): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#onLine(name, line);
    }
    if (partial !== "") this.#onLine(name, partial);
  }

  #onLine(stream: "stdout" | "stderr", line: string): void {
    this[stream].push(line);
    for (const waiter of this.#waiters) {
      if (waiter.stream !== stream || !waiter.predicate(line)) continue;
      waiter.found.push(line);
      if (waiter.found.length >= waiter.count) {
        this.#waiters.delete(waiter);
        waiter.resolve(waiter.found);
      }
    }
  }

  #failure(what: string, waiter: Waiter): Error {
    const tail = (lines: string[]) => lines.slice(-OUTPUT_TAIL_LINES).join("\n");
    return new Error(
      `${what} ${waiter.count} matching ${waiter.stream} line(s) appeared (${waiter.found.length} did)\n` +
        `--- stdout (last lines) ---\n${tail(this.stdout)}\n` +
        `--- stderr (last lines) ---\n${tail(this.stderr)}\n--- end ---`,
    );
  }
}

/**
 * Starts the command line with `args` (after the script name).
 *
 * @example
 * ```ts
 * await using cli = spawnCli(["version"], { entry: "main" });
 * assert.equal((await cli.status).code, 0);
 * ```
 */
export function spawnCli(args: readonly string[], options: SpawnOptions = {}): CliProcess {
  return new CliProcess(args, options);
}

/** What {@linkcode runCli} returns. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the command line to its end and returns its exit code and output. */
export async function runCli(
  args: readonly string[],
  options: SpawnOptions & { readonly timeoutMs?: number } = {},
): Promise<CliResult> {
  const { timeoutMs = 30_000, ...spawn } = options;
  await using cli = spawnCli(args, spawn);
  // A command that should exit but hangs (a `run` that starts when it should
  // have refused) fails the test instead of holding it forever.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cli.signal("SIGKILL");
      reject(new Error(`nsqworker ${args.join(" ")} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const { code } = await Promise.race([cli.status, deadline]).finally(() => clearTimeout(timer));
  const text = (lines: string[]) => lines.map((line) => `${line}\n`).join("");
  return { code, stdout: text(cli.stdout), stderr: text(cli.stderr) };
}

/**
 * Writes `config` to `dir` and starts `nsqworker run` on it with the fixture
 * workers, allowed to write only in `dir`.
 */
export async function startDaemon(
  dir: TempDir,
  config: string | Record<string, unknown>,
  options: Omit<SpawnOptions, "writeDir"> = {},
): Promise<CliProcess> {
  const path = await dir.writeConfig(config);
  return spawnCli(["run", "-c", path], { ...options, writeDir: dir.path });
}
