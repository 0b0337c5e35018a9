import type { ServerResponse } from 'node:http';

/** One visit to a sandbox consent page, for tests to look at. */
export interface ConsentRequest {
  clientId: string | null;
  state: string | null;
  scope: string | null;
  responseType: string | null;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A sandbox's OAuth consent page (`GET /oauth`), as a provider shows it to the person who grants
 * access: the app, the scopes asked for and an "Allow" link. Following the link (`GET
 * /oauth/allow`) issues a one-time code and sends the browser to the app's registered redirect
 * URI with `code` and `state` (and whatever `extra` the provider adds, e.g. the account's host).
 */
export function serveConsent(
  url: URL,
  res: ServerResponse,
  o: { provider: string; clientId: string; redirectUri: () => string; issueCode: () => string; extra?: Record<string, string>; seen: ConsentRequest[] },
): boolean {
  if (url.pathname === '/oauth') {
    const q = url.searchParams;
    o.seen.push({ clientId: q.get('client_id'), state: q.get('state'), scope: q.get('scope'), responseType: q.get('response_type') });
    if (q.get('client_id') !== o.clientId) {
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(`<!DOCTYPE html><title>${o.provider}</title><h1>Unknown application</h1>`);
      return true;
    }
    const allow = new URLSearchParams({ state: q.get('state') ?? '' });
    const scopes = (q.get('scope') ?? '').split(',').filter(Boolean);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
      `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(o.provider)}: grant access</title></head><body>` +
        `<h1>${esc(o.provider)} (sandbox)</h1><p>The application <b>${esc(o.clientId)}</b> asks for access to your account.</p>` +
        (scopes.length ? `<ul>${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>` : '') +
        `<p><a id="allow" href="/oauth/allow?${esc(allow.toString())}">Allow</a></p></body></html>`,
    );
    return true;
  }
  if (url.pathname === '/oauth/allow') {
    const back = new URL(o.redirectUri());
    back.searchParams.set('code', o.issueCode());
    const state = url.searchParams.get('state');
    if (state) back.searchParams.set('state', state);
    for (const [k, v] of Object.entries(o.extra ?? {})) back.searchParams.set(k, v);
    res.writeHead(302, { location: back.toString() }).end();
    return true;
  }
  return false;
}
