import type { RecentChat } from '../ledger/activity.js';
import type { DeadLetter } from '../ledger/dead-letters.js';
import type { ReconcileReport } from '../ops/reconcile.js';
import { actionButton, esc, page, table, when, type Html } from './html.js';
import type { AccountView, Overview } from './overview.js';

/** A one-line message above a page's content. */
export interface Flash {
  kind: 'done' | 'error' | 'notice';
  text: string;
}

function flashHtml(f: Flash | undefined): Html {
  return f ? `<div class="${f.kind}" id="flash">${esc(f.text)}</div>` : '';
}

export function loginPage(o: { csrf: string; error?: string }): Html {
  return page({
    title: 'Log in',
    body:
      `<form class="login" method="post" action="/console/login"><h1>avito-sync console</h1>` +
      (o.error ? `<div class="error" id="flash">${esc(o.error)}</div>` : '') +
      `<input type="hidden" name="_csrf" value="${esc(o.csrf)}"><label for="password">Password</label>` +
      `<input id="password" name="password" type="password" autocomplete="current-password" autofocus required>` +
      `<button class="primary" type="submit" id="login">Log in</button></form>`,
  });
}

/** A plain page for the OAuth callbacks and errors (no session needed to see it). */
export function messagePage(o: { title: string; text: string; kind: Flash['kind']; next?: string }): Html {
  // A same-site navigation from here carries the SameSite=Strict session cookie again, which
  // the cross-site redirect from the provider did not.
  const next = o.next ? `<p><a id="continue" href="${esc(o.next)}">Continue to the console</a></p>` : '';
  return page({ title: o.title, body: `<h1>${esc(o.title)}</h1><div class="${o.kind}" id="flash">${esc(o.text)}</div>${next}` });
}

function healthCell(a: AccountView): Html {
  if (!a.avito.configured) return '<span class="bad">no Avito credentials</span>';
  if (!a.health) return '<span class="muted">unknown</span>';
  if (a.health.state && a.health.state !== 'running') return `<span class="warn">${esc(a.health.state)}</span>`;
  return a.health.healthy ? '<span class="ok">healthy</span>' : '<span class="warn">degraded</span>';
}

function tokenCell(a: AccountView, now: number): Html {
  const exp = a.health?.token.expiresAt ?? a.status?.token?.expiresAt ?? null;
  const grant = a.avito.oauthConnected ? 'authorization_code' : 'client_credentials';
  if (!exp) return `<span class="muted">none yet</span><br><span class="small muted">${grant}</span>`;
  const expired = Date.parse(exp) <= now;
  return `${expired ? '<span class="bad">expired</span> ' : ''}${when(exp, now)}<br><span class="small muted">${grant}</span>`;
}

export function accountsPage(o: { overview: Overview; csrf: string; flash?: Flash; canConnect: boolean; publicUrl?: string; now?: number }): Html {
  const now = o.now ?? Date.now();
  const { overview } = o;
  const parts: Html[] = [flashHtml(o.flash)];
  if (overview.todo.length) parts.push(`<div class="notice" id="todo"><b>To do:</b><ul>${overview.todo.map((t) => `<li>${esc(t)}</li>`).join('')}</ul></div>`);
  if (!o.canConnect) parts.push('<div class="notice">Connect buttons need PUBLIC_URL: the providers send the operator back to PUBLIC_URL/oauth/&lt;provider&gt;/callback.</div>');
  parts.push('<h1>Accounts</h1>');
  parts.push(
    table(
      ['account', 'health', 'last poll', 'last webhook', 'Avito token', 'chats', 'messages', 'connect'],
      overview.accounts.map((a) => [
        `<a href="/console/accounts/${encodeURIComponent(a.id)}" class="account-link">${esc(a.id)}</a>${a.status?.avitoUserId ? `<br><span class="small muted">Avito user ${esc(a.status.avitoUserId)}</span>` : ''}`,
        healthCell(a) + (a.health?.lastPollError ? `<br><span class="small bad">${esc(a.health.lastPollError.message)}</span>` : ''),
        when(a.health?.lastGoodPoll, now),
        when(a.health?.lastWebhook, now),
        tokenCell(a, now),
        esc(a.status?.chats ?? 0),
        esc(a.status?.messages ?? 0),
        connectButtons(a, o.csrf, o.canConnect),
      ]),
      'no accounts configured',
    ),
  );
  parts.push('<h2>Connectors</h2>');
  const rows: Html[][] = [];
  for (const a of overview.accounts) {
    for (const c of a.connectors) {
      const st = a.status?.connectors.find((x) => x.connector === c.id);
      const b = st?.backlog;
      rows.push([
        esc(a.id),
        esc(c.name),
        c.oauthConnected === false ? '<span class="bad">not connected</span>' : c.oauthConnected ? '<span class="ok">connected (OAuth)</span>' : '<span class="ok">configured</span>',
        b ? `${b.pending} waiting, ${b.leased} in flight, ${b.delivered} delivered, <span class="${b.dead ? 'bad' : ''}">${b.dead} dead</span>` : '<span class="muted">nothing yet</span>',
        esc(st?.conversations ?? 0),
        st?.paused ? `<span class="warn">paused ${st.paused.until === 'indefinitely' ? 'until resumed' : `until ${when(st.paused.until, now)}`}</span><br><span class="small">${esc(st.paused.reason)}</span>` : '<span class="muted">—</span>',
        st?.lastError ? `<span class="small">${esc(st.lastError)}</span>` : '<span class="muted">—</span>',
      ]);
    }
  }
  parts.push(table(['account', 'connector', 'state', 'backlog', 'conversations', 'pause', 'last error'], rows, 'no connectors enabled (ledger only)'));
  parts.push('<h2>Last errors</h2>');
  const errors = overview.accounts.flatMap((a) => (a.status?.lastErrors ?? []).map((e) => [esc(a.id), when(e.at, now), esc(e.scope), esc(e.ref ?? ''), `<span class="small">${esc(e.error)}</span>`]));
  parts.push(table(['account', 'at', 'while', 'item', 'error'], errors, 'no errors recorded'));
  if (o.publicUrl) parts.push(`<p class="small muted">Callback URLs to register with the providers: ${esc(o.publicUrl)}/oauth/avito/callback${overview.accounts.flatMap((a) => a.connectors).filter((c) => c.oauthConnected !== undefined).map((c) => `, ${esc(o.publicUrl)}/oauth/${esc(c.id)}/callback`).filter((v, i, all) => all.indexOf(v) === i).join('')}</p>`);
  return page({ title: 'Accounts', nav: 'accounts', csrf: o.csrf, body: parts.join('') });
}

function connectButtons(a: AccountView, csrf: string, canConnect: boolean): Html {
  if (!canConnect) return '<span class="muted small">set PUBLIC_URL</span>';
  const out: Html[] = [];
  if (a.avito.configured) {
    out.push(actionButton({ action: `/console/connect/avito/${encodeURIComponent(a.id)}`, csrf, label: a.avito.oauthConnected ? 'Reconnect Avito' : 'Connect Avito', primary: !a.avito.oauthConnected, id: `connect-avito-${a.id}` }));
  }
  for (const c of a.connectors) {
    if (c.oauthConnected === undefined) continue;
    out.push(actionButton({ action: `/console/connect/${encodeURIComponent(c.id)}/${encodeURIComponent(a.id)}`, csrf, label: `${c.oauthConnected ? 'Reconnect' : 'Connect'} ${c.name}`, primary: !c.oauthConnected, id: `connect-${c.id}-${a.id}` }));
  }
  return out.join(' ') || '<span class="muted">—</span>';
}

export function accountPage(o: { account: AccountView; chats: (RecentChat & { links: { connector: string; url: string | undefined; id: string }[] })[]; chart: Html; csrf: string; now?: number }): Html {
  const now = o.now ?? Date.now();
  const a = o.account;
  const rows = o.chats.map((c) => [
    `<a href="https://www.avito.ru/profile/messenger/channel/${encodeURIComponent(c.chatId)}" rel="noreferrer noopener" target="_blank">${esc(c.chatId)}</a>${c.chatType ? ` <span class="small muted">${esc(c.chatType)}</span>` : ''}`,
    esc(c.itemTitle ?? '—'),
    esc(c.buyerName ?? '—'),
    when(c.updated === null ? null : c.updated * 1000, now),
    esc(c.messages),
    c.links.length ? c.links.map((l) => (l.url ? `<a href="${esc(l.url)}" rel="noreferrer noopener" target="_blank">${esc(l.connector)} ${esc(l.id)}</a>` : `${esc(l.connector)} ${esc(l.id)}`)).join('<br>') : '<span class="muted">not yet</span>',
  ]);
  return page({
    title: `Account ${a.id}`,
    nav: 'accounts',
    csrf: o.csrf,
    body:
      `<h1>Account ${esc(a.id)}</h1><h2>Messages in and replies out per hour</h2>${o.chart}` +
      `<h2>Recent conversations</h2>${table(['Avito chat', 'item', 'buyer', 'updated', 'messages', 'in the CRM'], rows, 'no chats yet')}`,
  });
}

export function deadLettersPage(o: { letters: DeadLetter[]; csrf: string; flash?: Flash; now?: number }): Html {
  const now = o.now ?? Date.now();
  const rows = o.letters.map((d) => [
    `<span class="dead-id">${esc(d.id)}</span>`,
    esc(d.kind),
    esc(d.account),
    esc(d.connector),
    esc(d.chat),
    esc(d.ref),
    esc(d.attempts),
    `<span class="small">${esc(d.error ?? '')}</span>`,
    when(d.at, now),
    actionButton({ action: '/console/dead-letters/retry', csrf: o.csrf, label: 'Retry', fields: { id: d.id }, id: `retry-${d.id}` }),
  ]);
  const all = o.letters.length ? `<p>${actionButton({ action: '/console/dead-letters/retry', csrf: o.csrf, label: `Retry all ${o.letters.length}`, fields: { id: 'all' }, id: 'retry-all' })}</p>` : '';
  return page({
    title: 'Dead letters',
    nav: 'dead-letters',
    csrf: o.csrf,
    body: `${flashHtml(o.flash)}<h1>Dead letters</h1><p class="muted">Deliveries to CRMs (d…) and replies to Avito (r…) that failed for good. Retry puts them back in line.</p>${all}${table(['id', 'kind', 'account', 'connector', 'chat', 'message / reply', 'attempts', 'error', 'at', ''], rows, 'no dead letters')}`,
  });
}

export function gapsPage(o: { hours: number; reports: ReconcileReport[] | undefined; errors: string[]; csrf: string }): Html {
  const form = `<form method="get" action="/console/gaps"><label>Last <input name="hours" type="number" min="1" max="720" value="${esc(o.hours)}" style="width:5em"> hours</label> <button type="submit" id="run-gaps">Compare</button></form>`;
  const parts: Html[] = ['<h1>Gap report</h1><p class="muted">Compares Avito, the ledger and each CRM over a recent window (as <code>avito-sync reconcile --report</code>) and lists every message missing somewhere, with the reason the ledger knows.</p>', form];
  for (const e of o.errors) parts.push(`<div class="error">${esc(e)}</div>`);
  for (const r of o.reports ?? []) {
    parts.push(
      `<h2>Account ${esc(r.account)} since ${esc(r.since.slice(0, 16).replace('T', ' '))} UTC</h2><p>${esc(r.avitoMessages)} messages at Avito, ${esc(r.ledgerMessages)} in the ledger, ${esc(r.checkedInCrm)} checked in the CRM: <b class="${r.gaps.length ? 'warn' : 'ok'}" id="gap-count-${esc(r.account)}">${r.gaps.length} gap${r.gaps.length === 1 ? '' : 's'}</b></p>` +
        table(['message', 'chat', 'created', 'missing in', 'why'], r.gaps.map((g) => [esc(g.messageId), esc(g.chatId), esc(g.created.slice(0, 19).replace('T', ' ')), esc(g.missingIn), `<span class="small">${esc(g.reason)}</span>`]), 'nothing missing'),
    );
  }
  return page({ title: 'Gap report', nav: 'gaps', csrf: o.csrf, body: parts.join('') });
}
