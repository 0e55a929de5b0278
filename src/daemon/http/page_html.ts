/**
 * The page as HTML rendered by the daemon, so that its figures read without
 * JavaScript; the page's script (page_script.ts) then keeps them live. No
 * inline script or style (the Content-Security-Policy allows none), and
 * every text from a message or the config is escaped.
 *
 * @module
 */

import type {
  DeadLetterFilter,
  DeadLettersJson,
  EntryStateJson,
  PageStateJson,
  SampleJson,
} from "./page_state.ts";
import { breakerLine, childLine, stateWords } from "./page_words.ts";

/** What a rendering shows. */
export interface PageView {
  /** Whether the config has an `http.token` (the page asks for it, actions are on). */
  readonly tokenRequired: boolean;
  /** The figures; null when the token was not given yet (the page shows nothing else). */
  readonly state: PageStateJson | null;
  readonly history: Readonly<Record<string, readonly SampleJson[]>> | null;
  readonly deadLetters: DeadLettersJson | null;
  readonly filter: DeadLetterFilter;
  /** The token given was wrong. */
  readonly loginFailed?: boolean;
}

const OUTCOMES = ["finish", "retry", "dead", "duplicate", "busy", "interrupted"] as const;

/** Escapes text for an element's content or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = escapeHtml;

/**
 * The whole page.
 *
 * @example
 * ```ts
 * import { renderPage } from "./page_html.ts";
 *
 * const html = renderPage({
 *   tokenRequired: true,
 *   state: null,
 *   history: null,
 *   deadLetters: null,
 *   filter: { entry: null, reason: null, match: null },
 * });
 * html.includes('id="login"'); // true
 * ```
 */
export function renderPage(view: PageView): string {
  const { state } = view;
  const signedIn = state !== null;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nsqworker</title>
<link rel="stylesheet" href="/page.css">
<script src="/page.js" defer></script>
</head>
<body data-token="${view.tokenRequired ? "required" : "none"}" data-signed-in="${signedIn}">
<header>
<h1>nsqworker</h1>
<p id="daemon">${state ? daemonLine(state) : ""}</p>
<form id="logout" method="post" action="/logout"${
    view.tokenRequired && signedIn ? "" : " hidden"
  }><button type="submit">Sign out</button></form>
</header>
${loginSection(view)}
<main id="dashboard"${signedIn ? "" : " hidden"}>
<p id="action-result" role="status"></p>
<section id="entries">
<h2>Entries</h2>
<table>
<thead><tr><th>Entry</th><th>State</th><th>nsqd: RDY, in flight</th><th>Outcomes</th>` +
    `<th>Handler p50 / p99</th><th>Last 15 minutes</th><th>Actions</th></tr></thead>
<tbody id="entry-rows">
${
      state
        ? state.entries.map((entry) => entryRow(entry, view.history?.[entry.key] ?? [])).join("\n")
        : ""
    }
</tbody>
</table>
</section>
${deadLetterSection(view)}
</main>
</body>
</html>
`;
}

function daemonLine(state: PageStateJson): string {
  const ready = state.draining ? "draining" : state.ready ? "ready" : "not ready";
  return `version ${e(state.version)} · up ${Math.round(state.uptime_seconds)} s · ${ready}`;
}

function loginSection(view: PageView): string {
  const shown = view.tokenRequired && view.state === null;
  return `<section id="login"${shown ? "" : " hidden"}>
<h2>Token</h2>
<form id="login-form" method="post" action="/login">
<label>http.token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Open</button>
</form>
<p id="login-error" role="alert">${
    view.loginFailed ? "That is not the configured http.token." : ""
  }</p>
</section>`;
}

function entryRow(entry: EntryStateJson, history: readonly SampleJson[]): string {
  const nsqds = entry.nsqds.map((n) =>
    `<li>${e(n.address)}: ${
      n.connected ? `RDY ${n.rdy}, ${n.in_flight} in flight` : "not connected"
    }</li>`
  ).join("");
  const outcomes = OUTCOMES.map((kind) =>
    `<span>${kind} <b data-outcome="${kind}">${entry.outcomes[kind] ?? 0}</b></span>`
  ).join(" ");
  let answered = 0;
  let failed = 0;
  for (const sample of history) {
    answered += sample[1];
    failed += sample[2];
  }
  const { p50, p99 } = entry.handler_duration_ms;
  return `<tr data-entry="${e(entry.key)}">
<td><b>${e(entry.topic)}</b>/${e(entry.channel)}<br><small>${e(entry.worker)}</small></td>
<td data-field="state">${e(stateWords(entry).join(" · "))}${breakerAndChildrenHtml(entry)}${
    entry.failure ? `<br><small>${e(entry.failure)}</small>` : ""
  }</td>
<td data-field="nsqds"><ul>${nsqds}</ul></td>
<td data-field="outcomes">${outcomes}</td>
<td data-field="latency">${ms(p50)} / ${ms(p99)}</td>
<td data-field="chart">${answered} answered, ${failed} failed</td>
<td data-field="actions"></td>
</tr>`;
}

/** The breaker's line and the list of children, for an entry that has them. */
function breakerAndChildrenHtml(entry: EntryStateJson): string {
  const breaker = breakerLine(entry.breaker);
  const children = Array.isArray(entry.children) ? entry.children : null;
  return (breaker === null ? "" : `<br><small data-field="breaker">${e(breaker)}</small>`) +
    (children === null
      ? ""
      : `<ul data-field="children">${
        children.map((child) => `<li>${e(childLine(child))}</li>`).join("")
      }</ul>`);
}

function ms(value: number | null): string {
  return value === null ? "—" : `≤ ${value} ms`;
}

function deadLetterSection(view: PageView): string {
  const list = view.deadLetters;
  const { filter } = view;
  const option = (value: string, label: string, selected: boolean) =>
    `<option value="${e(value)}"${selected ? " selected" : ""}>${e(label)}</option>`;
  const entries = view.state?.entries ?? [];
  const reasons = [
    ...new Set([...(list?.reasons ?? []), ...(filter.reason ? [filter.reason] : [])]),
  ];
  const depths = (list?.depths ?? []).map((d) => {
    const channels = d.channels.map((c) => `; channel ${e(c.name)}: ${c.depth}`).join("");
    const problems = d.problems.length > 0 ? ` (${e(d.problems.join("; "))})` : "";
    return `<li data-topic="${e(d.topic)}">${
      e(d.topic)
    }: <b>${d.depth}</b> in the topic${channels}${problems}</li>`;
  }).join("");
  const rows = (list?.shown ?? []).map((d) =>
    `<tr>
<td>${e(new Date(d.at).toISOString())}</td><td>${e(d.entry)}</td><td>${e(d.worker)}</td>` +
    `<td data-field="reason">${e(d.reason)}</td><td data-field="error">${e(d.error)}</td>` +
    `<td>${d.attempts}</td><td data-field="body" class="${d.preview.encoding}">${
      e(d.preview.text)
    }${d.preview.cut ? "…" : ""} <small>(${d.body_bytes} bytes)</small></td>
</tr>`
  ).join("\n");
  return `<section id="dead-letters">
<h2>Dead letters</h2>
<ul id="depths">${depths}</ul>
<form id="dl-filter" method="get" action="/">
<label>Entry <select name="entry">${option("", "all", filter.entry === null)}${
    entries.map((x) => option(x.key, x.key, filter.entry === x.key)).join("")
  }</select></label>
<label>Reason <select name="reason">${option("", "all", filter.reason === null)}${
    reasons.map((r) => option(r, r, filter.reason === r)).join("")
  }</select></label>
<label>Error contains <input name="match" value="${e(filter.match ?? "")}"></label>
<button type="submit">Filter</button>
<button type="button" id="replay" hidden>Replay these</button>
</form>
<p id="replay-result" role="status"></p>
<p id="dl-count">${
    list ? `${list.matching} dead letters match; the newest ${list.shown.length} are shown.` : ""
  }</p>
<table>
<thead><tr><th>Time</th><th>Entry</th><th>Worker</th><th>Reason</th><th>Error</th>` +
    `<th>Attempts</th><th>Body</th></tr></thead>
<tbody id="dl-rows">
${rows}
</tbody>
</table>
</section>`;
}
