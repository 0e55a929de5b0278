/**
 * The page's style sheet, served at `/page.css` (the Content-Security-Policy
 * allows style from this origin only, none inline).
 *
 * @module
 */

/** The style sheet. */
export const PAGE_STYLE = `:root { font: 14px/1.4 system-ui, sans-serif; color: #222; }
body { margin: 0 1.5rem 2rem; }
header { display: flex; align-items: baseline; gap: 1rem; border-bottom: 1px solid #ddd; }
header h1 { font-size: 1.3rem; margin: 0.6rem 0; }
header form { margin-left: auto; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 0.4rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.3rem 0.5rem; border-bottom: 1px solid #eee; }
th { font-weight: 600; background: #f6f6f6; }
td ul { margin: 0; padding-left: 1rem; }
td[data-field="outcomes"] span { white-space: nowrap; margin-right: 0.4rem; }
td[data-field="chart"] svg { display: block; margin-bottom: 2px; background: #fafafa; }
td[data-field="actions"] button { display: block; margin-bottom: 0.2rem; width: 9rem; }
td[data-field="body"] { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; max-width: 28rem; }
td[data-field="error"] { max-width: 24rem; word-break: break-word; }
td.hex, td[data-field="body"].hex { color: #555; }
#login { max-width: 28rem; }
#login-error { color: #b00; }
#action-result, #replay-result { color: #036; min-height: 1.2em; }
#dl-filter { display: flex; flex-wrap: wrap; gap: 0.8rem; align-items: end; margin-bottom: 0.4rem; }
#depths { padding-left: 1rem; }
[hidden] { display: none !important; }
`;
