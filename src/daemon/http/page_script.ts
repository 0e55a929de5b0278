/**
 * The page's script, served at `/page.js` (the Content-Security-Policy
 * allows script from this origin only, none inline). It keeps the figures
 * live from server-sent events, draws the charts as SVG, lists dead letters
 * and sends the actions with the token in a header. Everything that comes
 * from a message or the config is inserted as text (text nodes and
 * `textContent`, never as HTML). The token, once given, is kept in this
 * page's memory only.
 *
 * @module
 */

import { breakerLine, childLine, stateWords } from "./page_words.ts";

/** The script's source. */
export const PAGE_SCRIPT = `"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOMES = ["finish", "retry", "dead", "duplicate", "busy", "interrupted"];
  const body = document.body;
  const tokenRequired = body.dataset.token === "required";
  const byId = (id) => document.getElementById(id);
  const filterForm = byId("dl-filter");
  /** The token, in memory only: needed by actions. */
  let token = null;
  let actions = false;
  let history = {};
  let samplesTaken = -1;
  let capacity = 180;
  let deadWritten = -1;
  let events = null;
  let pending = null;
  const rows = new Map();

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    node.append(...children.map((c) => (typeof c === "number" ? String(c) : c)));
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra);
    if (token !== null) h.Authorization = "Bearer " + token;
    return h;
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: headers(), credentials: "same-origin" });
    if (response.status === 401) {
      signedOut();
      throw new Error("the token is needed");
    }
    if (!response.ok) throw new Error(path + " answered " + response.status);
    return response.json();
  }

  function signedOut() {
    if (events !== null) events.close();
    events = null;
    byId("dashboard").hidden = true;
    byId("entry-rows").replaceChildren();
    byId("dl-rows").replaceChildren();
    rows.clear();
    byId("login").hidden = false;
  }

  function askToken(then, why) {
    pending = then;
    byId("login-error").textContent = why;
    byId("login").hidden = false;
    byId("login-form").elements.token.focus();
  }

  byId("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const given = new FormData(event.target).get("token");
    const response = await fetch("/login", {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams({ token: given }),
      credentials: "same-origin",
    });
    if (!response.ok) {
      byId("login-error").textContent = response.status === 401
        ? "That is not the configured http.token."
        : "Signing in failed: " + response.status;
      return;
    }
    token = given;
    event.target.reset();
    byId("login-error").textContent = "";
    byId("login").hidden = true;
    byId("logout").hidden = false;
    const wasShown = !byId("dashboard").hidden;
    byId("dashboard").hidden = false;
    if (!wasShown || events === null) start();
    if (pending !== null) {
      const then = pending;
      pending = null;
      then();
    }
  });

  function act(run) {
    if (tokenRequired && token === null) {
      askToken(run, "Actions need the token, kept in this page only.");
      return;
    }
    run();
  }

  async function post(path, payload) {
    const response = await fetch(path, {
      method: "POST",
      headers: headers(payload === null ? {} : { "Content-Type": "application/json" }),
      body: payload === null ? null : JSON.stringify(payload),
      credentials: "same-origin",
    });
    let answer = {};
    try {
      answer = await response.json();
    } catch (_) {
      answer = {};
    }
    if (response.status === 401) {
      token = null;
      askToken(null, "That is not the configured http.token.");
    }
    return { ok: response.ok, status: response.status, answer };
  }

  function entryAction(entry, action, scope) {
    act(async () => {
      const path = "/entries/" + encodeURIComponent(entry.topic) + "/" +
        encodeURIComponent(entry.channel) + "/" + action + (scope === "nsqd" ? "?scope=nsqd" : "");
      const out = byId("action-result");
      out.textContent = action + " " + entry.key + "…";
      const { ok, answer } = await post(path, null);
      if (!ok) {
        out.textContent = action + " " + entry.key + " failed: " + (answer.error || "");
        return;
      }
      out.textContent = scope === "nsqd"
        ? (action === "pause" ? "paused" : "unpaused") + " the channel " + entry.key + " on " +
          answer.nsqds.map((n) => n.nsqd + ": " + n.result).join(", ")
        : (action === "pause" ? "paused " : "resumed ") + entry.key + " on this daemon";
      out.dataset.done = action + ":" + scope + ":" + entry.key;
    });
  }

  function button(label, action, scope, entry) {
    const b = el("button", { type: "button", "data-action": action, "data-scope": scope }, label);
    b.addEventListener("click", () => entryAction(entry, action, scope));
    return b;
  }

  // The same words as the page the daemon renders (page_words.ts).
  ${stateWords}
  ${breakerLine}
  ${childLine}

  function ms(value) {
    return value === null || value === undefined ? "—" : "≤ " + value + " ms";
  }

  function line(values, max, width, height, color, name) {
    const step = width / Math.max(1, capacity - 1);
    const start = width - (values.length - 1) * step;
    const points = values.map((v, i) =>
      (start + i * step).toFixed(1) + "," + (height - (v / max) * (height - 2) - 1).toFixed(1)
    );
    return svgEl("polyline", {
      points: points.join(" "),
      fill: "none",
      stroke: color,
      "stroke-width": 1.5,
      "data-series": name,
    });
  }

  function chart(samples, series, label) {
    const width = 180;
    const height = 36;
    const node = svgEl("svg", { viewBox: "0 0 " + width + " " + height, width, height, role: "img" });
    let max = 0;
    for (const s of series) for (const v of s.values) max = Math.max(max, v);
    node.setAttribute("data-max", String(max));
    node.setAttribute("data-samples", String(samples.length));
    const title = svgEl("title", {});
    title.textContent = label + " (peak " + max.toFixed(1) + ")";
    node.append(title);
    node.append(svgEl("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, stroke: "#ccc" }));
    if (samples.length > 0) {
      for (const s of series) node.append(line(s.values, max || 1, width, height, s.color, s.name));
    }
    return node;
  }

  function charts(entry) {
    const samples = history[entry.key] || [];
    const perSecond = (n) => n / (sampleMsOf() / 1000);
    const rate = chart(samples, [
      { name: "rate", color: "#2a6fdb", values: samples.map((s) => perSecond(s[1])) },
      { name: "failures", color: "#d1342f", values: samples.map((s) => perSecond(s[2])) },
    ], "messages/s (blue) and failures/s (red), last 15 minutes");
    rate.setAttribute("data-chart", "rate");
    const latency = chart(samples, [
      { name: "p50", color: "#555", values: samples.map((s) => s[3] || 0) },
      { name: "p99", color: "#e08a00", values: samples.map((s) => s[4] || 0) },
    ], "handler p50 (grey) and p99 (orange), ms");
    latency.setAttribute("data-chart", "latency");
    let answered = 0;
    let failed = 0;
    for (const s of samples) {
      answered += s[1];
      failed += s[2];
    }
    return [rate, latency, el("small", {}, answered + " answered, " + failed + " failed")];
  }

  let sampleMs = 5000;
  function sampleMsOf() {
    return sampleMs;
  }

  function entryRow(entry) {
    let row = rows.get(entry.key);
    if (row === undefined) {
      const cells = {};
      const tr = el("tr", { "data-entry": entry.key });
      const name = el("td", {}, el("b", {}, entry.topic), "/" + entry.channel, el("br"),
        el("small", {}, entry.worker));
      tr.append(name);
      for (const field of ["state", "nsqds", "outcomes", "latency", "chart", "actions"]) {
        cells[field] = el("td", { "data-field": field });
        tr.append(cells[field]);
      }
      cells.actions.append(
        button("Pause", "pause", "daemon", entry),
        button("Resume", "resume", "daemon", entry),
        button("Pause on nsqd", "pause", "nsqd", entry),
        button("Unpause on nsqd", "resume", "nsqd", entry),
      );
      row = { tr, cells };
      rows.set(entry.key, row);
    }
    const { cells } = row;
    cells.state.replaceChildren(stateWords(entry).join(" · "));
    const breaker = breakerLine(entry.breaker);
    if (breaker !== null) cells.state.append(el("br"), el("small", { "data-field": "breaker" }, breaker));
    if (Array.isArray(entry.children)) {
      cells.state.append(el("ul", { "data-field": "children" },
        ...entry.children.map((child) => el("li", {}, childLine(child)))));
    }
    if (entry.failure) cells.state.append(el("br"), el("small", {}, entry.failure));
    cells.nsqds.replaceChildren(el("ul", {}, ...entry.nsqds.map((n) =>
      el("li", {}, n.address + ": " +
        (n.connected ? "RDY " + n.rdy + ", " + n.in_flight + " in flight" : "not connected"))
    )));
    cells.outcomes.replaceChildren(...OUTCOMES.flatMap((kind) => [
      el("span", {}, kind + " ", el("b", { "data-outcome": kind }, entry.outcomes[kind] || 0)),
      " ",
    ]));
    const d = entry.handler_duration_ms;
    cells.latency.replaceChildren(ms(d.p50) + " / " + ms(d.p99));
    cells.chart.replaceChildren(...charts(entry));
    for (const b of cells.actions.querySelectorAll("button")) b.hidden = !actions;
    return row.tr;
  }

  function render(state) {
    const ready = state.draining ? "draining" : state.ready ? "ready" : "not ready";
    byId("daemon").textContent = "version " + state.version + " · up " +
      Math.round(state.uptime_seconds) + " s · " + ready;
    actions = state.actions;
    sampleMs = state.sample_ms;
    if (state.samples_taken !== samplesTaken) {
      if (samplesTaken >= 0 && state.samples_taken === samplesTaken + 1) {
        for (const entry of state.entries) {
          if (entry.last_sample === null) continue;
          const samples = history[entry.key] || (history[entry.key] = []);
          samples.push(entry.last_sample);
          if (samples.length > capacity) samples.shift();
        }
        samplesTaken = state.samples_taken;
      } else {
        loadHistory();
      }
    }
    const keys = new Set(state.entries.map((e) => e.key));
    for (const key of [...rows.keys()]) {
      if (!keys.has(key)) rows.delete(key);
    }
    byId("entry-rows").replaceChildren(...state.entries.map(entryRow));
    entryOptions(state.entries);
    byId("replay").hidden = !actions;
    if (state.dead_letters_written !== deadWritten) {
      deadWritten = state.dead_letters_written;
      loadDeadLetters();
    }
  }

  function entryOptions(entries) {
    const select = filterForm.elements.entry;
    const chosen = select.value;
    const wanted = ["", ...entries.map((e) => e.key)];
    const have = [...select.options].map((o) => o.value);
    if (wanted.join("\\n") === have.join("\\n")) return;
    select.replaceChildren(...wanted.map((key) => el("option", { value: key }, key === "" ? "all" : key)));
    select.value = wanted.includes(chosen) ? chosen : "";
  }

  async function loadHistory() {
    try {
      const data = await getJson("/page/history");
      history = data.entries;
      samplesTaken = data.samples_taken;
    } catch (error) {
      byId("action-result").textContent = String(error.message || error);
    }
  }

  function query() {
    const q = new URLSearchParams();
    for (const [name, value] of new FormData(filterForm)) if (value !== "") q.set(name, value);
    return q.toString();
  }

  async function loadDeadLetters() {
    let data;
    try {
      data = await getJson("/page/dead-letters?" + query());
    } catch (error) {
      byId("dl-count").textContent = String(error.message || error);
      return;
    }
    byId("depths").replaceChildren(...data.depths.map((d) => {
      const item = el("li", { "data-topic": d.topic }, d.topic + ": ", el("b", {}, d.depth),
        " in the topic");
      for (const c of d.channels) item.append("; channel " + c.name + ": " + c.depth);
      if (d.problems.length > 0) item.append(" (" + d.problems.join("; ") + ")");
      return item;
    }));
    const select = filterForm.elements.reason;
    const chosen = select.value;
    const reasons = [...new Set(["", ...data.reasons, chosen])];
    select.replaceChildren(...reasons.map((r) => el("option", { value: r }, r === "" ? "all" : r)));
    select.value = chosen;
    byId("dl-count").textContent = data.matching + " dead letters match; the newest " +
      data.shown.length + " are shown.";
    byId("dl-rows").replaceChildren(...data.shown.map((d) =>
      el("tr", { "data-message-id": d.message_id },
        el("td", {}, new Date(d.at).toISOString()),
        el("td", {}, d.entry),
        el("td", {}, d.worker),
        el("td", { "data-field": "reason" }, d.reason),
        el("td", { "data-field": "error" }, d.error),
        el("td", {}, d.attempts),
        el("td", { "data-field": "body", class: d.preview.encoding },
          d.preview.text + (d.preview.cut ? "…" : ""), " ",
          el("small", {}, "(" + d.body_bytes + " bytes)")),
      )
    ));
  }

  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = query();
    window.history.replaceState(null, "", q === "" ? "/" : "/?" + q);
    loadDeadLetters();
  });
  for (const name of ["entry", "reason"]) {
    filterForm.elements[name].addEventListener("change", () => loadDeadLetters());
  }

  byId("replay").addEventListener("click", () => act(async () => {
    const form = new FormData(filterForm);
    const out = byId("replay-result");
    out.textContent = "Replaying…";
    delete out.dataset.replayed;
    const { ok, answer } = await post("/dead-letters/replay", {
      entry: form.get("entry") || null,
      reason: form.get("reason") || null,
      match: form.get("match") || null,
    });
    if (!ok) {
      out.textContent = "Replay failed: " + (answer.error || "");
      return;
    }
    out.dataset.replayed = String(answer.replayed);
    out.dataset.skipped = String(answer.skipped);
    out.dataset.left = String(answer.left);
    out.textContent = "replayed " + answer.replayed + ", skipped " + answer.skipped + ", left " +
      (answer.left === null ? "unknown" : answer.left) +
      (answer.failed > 0 ? ", failed " + answer.failed : "") +
      (answer.errors.length > 0 ? " (" + answer.errors.join("; ") + ")" : "");
    loadDeadLetters();
  }));

  function connect() {
    if (events !== null) events.close();
    events = new EventSource("/page/events");
    events.addEventListener("state", (event) => render(JSON.parse(event.data)));
    events.addEventListener("error", () => {
      // A closed stream (the daemon restarted, or a 401): look, then connect again.
      if (events === null || events.readyState !== EventSource.CLOSED) return;
      events = null;
      setTimeout(() => getJson("/page/state").then((state) => {
        render(state);
        connect();
      }, () => {}), 1000);
    });
  }

  function start() {
    loadHistory();
    connect();
  }

  if (body.dataset.signedIn === "true") start();
})();
`;
