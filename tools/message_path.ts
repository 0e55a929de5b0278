/**
 * Draws `docs/message_path.svg`: the path of one message through the daemon,
 * one box per file in the order the message meets them, each named with the
 * glossary's word, the file and the name it exports. It is drawn from the
 * code: a file that is gone or no longer exports the name fails the drawing
 * (and the test that compares the committed picture).
 *
 * Redraw: `deno run --allow-read --allow-write=docs tools/message_path.ts`
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** One stop of a message: the glossary's word for it and where the code is. */
export interface PathStep {
  readonly word: string;
  readonly file: string;
  readonly exports: string;
  readonly does: string;
}

/** In the order a message meets them, from nsqd and back to nsqd. */
export const MESSAGE_PATH: readonly PathStep[] = [
  {
    word: "connection",
    file: "src/nsq/reader_connection.ts",
    exports: "ReaderConnection",
    does: "one nsqd: messages in; FIN, REQ and TOUCH out",
  },
  {
    word: "consumer",
    file: "src/nsq/consumer.ts",
    exports: "Consumer",
    does: "RDY over the entry's nsqd: at most max_in_flight in flight",
  },
  {
    word: "message hand-off",
    file: "src/entry/message_handoff.ts",
    exports: "MessageHandoff",
    does: "each delivery past the breaker, through the runner, to its answer",
  },
  {
    word: "breaker",
    file: "src/entry/breaker_guard.ts",
    exports: "BreakerGuard",
    does: "with breaker: nothing taken while open, one message while half open",
  },
  {
    word: "message path",
    file: "src/entry/message_path.ts",
    exports: "createMessagePath",
    does: "the entry's ctx, task runner and batcher",
  },
  {
    word: "task runner",
    file: "src/runner/task_runner.ts",
    exports: "TaskRunner",
    does: "decode, validate, dedupe key, claim, handler under timeout",
  },
  {
    word: "key gate",
    file: "src/runner/key_gate.ts",
    exports: "KeyGate",
    does: "with key_concurrency: N handlers at once per key, the rest wait",
  },
  {
    word: "claim",
    file: "src/dedupe/store.ts",
    exports: "DedupeStore",
    does: "a key held while its handler runs, then done or released",
  },
  {
    word: "handler",
    file: "src/worker/worker.ts",
    exports: "defineWorker",
    does: "the worker's handle(body, ctx)",
  },
  {
    word: "outcome",
    file: "src/runner/outcome.ts",
    exports: "Outcome",
    does: "finish, duplicate, busy, retry, dead or interrupted",
  },
  {
    word: "outcome executor",
    file: "src/entry/outcome_executor.ts",
    exports: "OutcomeExecutor",
    does: "FIN; REQ with its delay; or a dead letter, then FIN",
  },
  {
    word: "dead letter",
    file: "src/entry/dead_letter.ts",
    exports: "deadLetterEnvelope",
    does: "the original body with its reason and error",
  },
  {
    word: "publisher",
    file: "src/entry/publisher.ts",
    exports: "NsqPublisher",
    does: "dead letters and ctx.publish* to publish_nsqd_tcp_address",
  },
];

const ROOT = new URL("../", import.meta.url);
const BOX_HEIGHT = 46;
const GAP = 18;
const WIDTH = 780;
const MARGIN = 16;

/** The SVG of {@linkcode MESSAGE_PATH}, read from the files as they are now. */
export async function messagePathSvg(): Promise<string> {
  const rows: string[] = [];
  let y = MARGIN;
  for (const [i, step] of MESSAGE_PATH.entries()) {
    const text = await Deno.readTextFile(new URL(step.file, ROOT));
    const declared = new RegExp(
      `export (?:abstract )?(?:class|function|interface|type|const) ${step.exports}\\b`,
    );
    if (!declared.test(text)) {
      throw new Error(`${step.file} should export ${step.exports}, and does not`);
    }
    rows.push(
      `<rect x="${MARGIN}" y="${y}" width="${WIDTH - 2 * MARGIN}" height="${BOX_HEIGHT}" rx="6" ` +
        `fill="#eef3fa" stroke="#5b7fb0"/>`,
      `<text x="${MARGIN + 12}" y="${y + 19}" font-weight="bold">${escape(step.word)}</text>`,
      `<text x="${MARGIN + 12}" y="${y + 37}" class="mono">${escape(step.file)} · ${
        escape(step.exports)
      }</text>`,
      `<text x="${MARGIN + 250}" y="${y + 19}" class="does">${escape(step.does)}</text>`,
    );
    y += BOX_HEIGHT;
    if (i < MESSAGE_PATH.length - 1) {
      const x = WIDTH / 2;
      rows.push(
        `<path d="M${x} ${y + 2} V${y + GAP - 3}" stroke="#5b7fb0" stroke-width="2" ` +
          `marker-end="url(#arrow)"/>`,
      );
      y += GAP;
    }
  }
  const height = y + MARGIN;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="14">`,
    "<title>The path of one message through nsqworker</title>",
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="6" ' +
    'markerHeight="6" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#5b7fb0"/></marker>' +
    "<style>.mono{font-family:monospace;font-size:12px;fill:#333}.does{fill:#333}</style></defs>",
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...rows,
    "</svg>",
    "",
  ].join("\n");
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** Where the picture is committed. */
export const MESSAGE_PATH_SVG: string = fileURLToPath(new URL("docs/message_path.svg", ROOT));

if (import.meta.main) {
  await Deno.writeTextFile(MESSAGE_PATH_SVG, await messagePathSvg());
  console.log(`wrote ${MESSAGE_PATH_SVG}`);
}
