/** Types of nsqjs_reader.mjs for Deno's type checker. */
export declare function parseFlags(argv: readonly string[]): Record<string, string>;
export declare function startReader(
  nsq: unknown,
  flags: Record<string, string>,
  log: (line: string) => void,
): unknown;
