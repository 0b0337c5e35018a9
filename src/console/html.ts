/**
 * HTML building blocks of the console: escaping, the page frame and small formatters. Pages are
 * rendered on the server, with inline CSS and no script, so the console works offline and under
 * a strict Content-Security-Policy.
 */

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A string already escaped (built from `esc` and literals). */
export type Html = string;

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center}
header a{color:#cfd8e3;text-decoration:none}header a.on{color:#fff;font-weight:600}
header .brand{font-weight:700;color:#fff;margin-right:12px}header form{margin-left:auto}
main{padding:18px 20px;max-width:1200px}
h1{font-size:20px;margin:4px 0 14px}h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:12px}
th,td{border:1px solid #dde2e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
.ok{color:#11784a;font-weight:600}.warn{color:#a35a00;font-weight:600}.bad{color:#b3261e;font-weight:600}
.muted{color:#6b7686}.small{font-size:12px}
.notice{background:#fff7e0;border:1px solid #f0d28a;padding:8px 12px;margin:0 0 14px}
.error{background:#fdecea;border:1px solid #f1b0aa;padding:8px 12px;margin:0 0 14px}
.done{background:#e8f6ee;border:1px solid #a6d9bb;padding:8px 12px;margin:0 0 14px}
button{font:inherit;padding:4px 12px;border:1px solid #8a96a6;border-radius:4px;background:#fff;cursor:pointer}
button.primary{background:#2459c5;border-color:#2459c5;color:#fff}
form.inline{display:inline}
input{font:inherit;padding:4px 6px}
.login{max-width:320px;margin:80px auto;background:#fff;border:1px solid #dde2e8;padding:20px}
.login input{width:100%;box-sizing:border-box;margin:6px 0 12px}
`;

export interface PageOptions {
  title: string;
  /** The nav entry to highlight: accounts, dead-letters, gaps. */
  nav?: string;
  /** The session's CSRF token: present once logged in (the logout button needs it). */
  csrf?: string;
  body: Html;
}

/** A whole console page. */
export function page(o: PageOptions): Html {
  const link = (href: string, id: string, label: string) => `<a href="${href}"${o.nav === id ? ' class="on"' : ''}>${label}</a>`;
  const header = o.csrf
    ? `<header><span class="brand">avito-sync</span>${link('/console/accounts', 'accounts', 'Accounts')}${link('/console/dead-letters', 'dead-letters', 'Dead letters')}${link('/console/gaps', 'gaps', 'Gap report')}` +
      `<form method="post" action="/console/logout">${csrfField(o.csrf)}<button type="submit">Log out</button></form></header>`
    : '';
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(o.title)} · avito-sync console</title><style>${CSS}</style></head><body>${header}<main>${o.body}</main></body></html>`;
}

/** The hidden CSRF field every console form carries. */
export function csrfField(token: string): Html {
  return `<input type="hidden" name="_csrf" value="${esc(token)}">`;
}

/** A POST button (a small form): every action is a POST with the CSRF token. */
export function actionButton(o: { action: string; csrf: string; label: string; fields?: Record<string, string>; primary?: boolean; id?: string }): Html {
  const hidden = Object.entries(o.fields ?? {}).map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
  return `<form class="inline" method="post" action="${esc(o.action)}">${csrfField(o.csrf)}${hidden}<button type="submit"${o.primary ? ' class="primary"' : ''}${o.id ? ` id="${esc(o.id)}"` : ''}>${esc(o.label)}</button></form>`;
}

/** A table from rows of already-escaped cells. */
export function table(headers: readonly string[], rows: readonly Html[][], empty = 'none'): Html {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** `2026-12-01 23:52 UTC (5 min ago)`, or a dash. */
export function when(iso: string | number | null | undefined, now = Date.now()): Html {
  if (iso === null || iso === undefined) return '<span class="muted">—</span>';
  const ms = typeof iso === 'number' ? iso : Date.parse(iso);
  if (!Number.isFinite(ms)) return '<span class="muted">—</span>';
  const d = new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  const diff = Math.round((ms - now) / 60_000);
  const rel = Math.abs(diff) < 1 ? 'now' : Math.abs(diff) < 120 ? `${Math.abs(diff)} min` : Math.abs(diff) < 48 * 60 ? `${Math.round(Math.abs(diff) / 60)} h` : `${Math.round(Math.abs(diff) / 1440)} d`;
  return `${esc(d)} UTC <span class="muted small">(${rel === 'now' ? 'now' : diff < 0 ? `${rel} ago` : `in ${rel}`})</span>`;
}
