/**
 * Draws the bench's chart: throughput per peer (bars) and the daemon's
 * resident memory while it drains (a line, with the idle figure as a rule).
 * Vega-Lite compiles the spec, Vega renders it to SVG without a browser,
 * resvg turns the SVG into a PNG with the DejaVu Sans of the npm package
 * (no system fonts, so the picture is the same on any machine).
 *
 *     node bench/node/chart.mjs NODE_DIR RESULT.json OUT.png
 *
 * NODE_DIR is where the bench installed this folder's package.json.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import process from "node:process";

const [nodeDir, resultPath, outPath] = process.argv.slice(2);
if (!nodeDir || !resultPath || !outPath) {
  console.error("usage: node chart.mjs NODE_DIR RESULT.json OUT.png");
  process.exit(2);
}
const require = createRequire(join(resolve(nodeDir), "package.json"));
const vega = await import(require.resolve("vega"));
const vegaLite = await import(require.resolve("vega-lite"));
const { Resvg } = require("@resvg/resvg-js");

const result = JSON.parse(readFileSync(resultPath, "utf8"));

const throughput = result.throughput
  .filter((peer) => typeof peer.msgs_per_sec === "number")
  .map((peer) => ({
    name: peer.name,
    msgs_per_sec: Math.round(peer.msgs_per_sec),
    label: `${Math.round(peer.msgs_per_sec).toLocaleString("en-US")}${
      peer.ratio_to_nsqworker === null ? "" : `  (${peer.ratio_to_nsqworker.toFixed(2)}×)`
    }`,
    self: peer.name === "nsqworker",
  }))
  .sort((a, b) => b.msgs_per_sec - a.msgs_per_sec);

const memory = result.memory?.load?.samples?.map((sample) => ({
  seconds: sample.t_ms / 1000,
  rss_mb: sample.rss_kb / 1024,
  drained_pct: sample.drained_pct,
})) ?? [];
const idleMb = result.memory?.idle?.rss_kb ? result.memory.idle.rss_kb / 1024 : null;

const throughputChart = {
  title: {
    text: "Throughput: a no-op handler draining a preloaded channel",
    subtitle: [
      `${result.settings.messages.toLocaleString("en-US")} × ${result.settings.message_size} B, ` +
      `max_in_flight ${result.settings.max_in_flight}`,
      `median of ${result.settings.rounds} alternating rounds; ratio to nsqworker`,
    ],
  },
  width: 560,
  height: { step: 26 },
  data: { values: throughput },
  encoding: {
    // The data is sorted already; a sort here conflicts between the layers.
    y: { field: "name", type: "nominal", sort: null, title: null },
    x: {
      field: "msgs_per_sec",
      type: "quantitative",
      title: "messages per second",
      // Room on the right for the labels.
      scale: {
        domain: [
          0,
          Math.max(1, ...throughput.map((p) => p.msgs_per_sec)) * 1.3,
        ],
      },
    },
  },
  layer: [
    {
      mark: { type: "bar" },
      encoding: {
        color: {
          field: "self",
          type: "nominal",
          scale: { domain: [true, false], range: ["#d95f02", "#7570b3"] },
          legend: null,
        },
      },
    },
    {
      mark: { type: "text", align: "left", dx: 4, fontSize: 11 },
      encoding: { text: { field: "label" } },
    },
  ],
};

const memoryLayers = [
  {
    data: { values: memory },
    mark: { type: "line", point: memory.length < 60 },
    encoding: {
      x: {
        field: "seconds",
        type: "quantitative",
        title: "seconds since the daemon started",
      },
      y: {
        field: "rss_mb",
        type: "quantitative",
        title: "RSS (MiB)",
        scale: { zero: true },
      },
    },
  },
];
if (idleMb !== null) {
  memoryLayers.push({
    data: {
      values: [{
        rss_mb: idleMb,
        label: `idle, 20 entries: ${idleMb.toFixed(0)} MiB`,
      }],
    },
    layer: [
      {
        mark: { type: "rule", strokeDash: [4, 4], color: "#1b9e77" },
        encoding: {},
      },
      {
        mark: {
          type: "text",
          align: "right",
          dy: -6,
          x: 556,
          color: "#1b9e77",
        },
        encoding: { text: { field: "label" } },
      },
    ],
    encoding: { y: { field: "rss_mb", type: "quantitative" } },
  });
}
const load = result.memory?.load;

/**
 * What the memory line shows, in figures read off it: where it starts, where
 * it is halfway and where it ends, then the peaks of the last two quarters.
 * No verdict word: the bench's "flat" is a bound on the last quarter's
 * growth, and a title saying "flat" over a line that still climbs misleads.
 */
function memorySubtitle() {
  if (!load) return "not measured";
  const draining = memory.filter((sample) => sample.drained_pct > 0);
  const first = draining[0];
  const last = draining.at(-1);
  if (!first || !last) return load.verdict;
  const middle = draining.reduce((best, sample) =>
    Math.abs(sample.drained_pct - 50) < Math.abs(best.drained_pct - 50) ? sample : best
  );
  const at = (sample) => `${sample.rss_mb.toFixed(0)} MiB (${sample.drained_pct.toFixed(0)} %)`;
  return [`RSS from ${at(first)} to ${at(middle)} and ${at(last)} drained`, load.verdict];
}

const memoryChart = {
  title: {
    text: `Memory: nsqworker RSS while draining ${
      (load?.messages ?? 0).toLocaleString("en-US")
    } messages`,
    subtitle: memorySubtitle(),
  },
  width: 560,
  height: 200,
  layer: memoryLayers,
};

const spec = {
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  title: {
    text: "nsqworker benchmarks",
    subtitle: `${result.date} · ${result.machine.description}${
      result.settings.quick ? " · --quick (noisy)" : ""
    }`,
    anchor: "start",
    fontSize: 16,
  },
  background: "white",
  padding: 16,
  vconcat: [
    ...(throughput.length > 0 ? [throughputChart] : []),
    ...(memory.length > 0 ? [memoryChart] : []),
  ],
  config: { font: "DejaVu Sans", view: { stroke: null } },
};

const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), {
  renderer: "none",
});
const svg = await view.toSVG();
const png = new Resvg(svg, {
  font: {
    fontFiles: [require.resolve("dejavu-fonts-ttf/ttf/DejaVuSans.ttf")],
    loadSystemFonts: false,
    defaultFontFamily: "DejaVu Sans",
  },
  fitTo: { mode: "zoom", value: 1.5 },
}).render().asPng();
writeFileSync(outPath, png);
