/**
 * The output of a program dev started, shown line by line under its name.
 *
 * @module
 */

/** Copies the lines of `stream` that are `shown` to stderr, each prefixed with `name`. */
export async function prefixLines(
  stream: ReadableStream<Uint8Array>,
  name: string,
  shown: (line: string) => boolean,
): Promise<void> {
  let partial = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (shown(line)) console.error(`${name} | ${line}`);
  }
  if (partial !== "" && shown(partial)) console.error(`${name} | ${partial}`);
}
