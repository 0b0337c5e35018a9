import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from '../errors.js';
import { hourlyActivity, recentChats } from '../ledger/activity.js';
import { connectorStore } from '../ledger/connector-state.js';
import { secretScrubber } from '../log/logger.js';
import { listDeadLetters, retryDeadLetters } from '../ledger/dead-letters.js';
import { reconcileAccount, type ReconcileReport } from '../ops/reconcile.js';
import type { Runtime } from '../runtime.js';
import type { HealthReport } from '../server/http-server.js';
import { activityChart } from './chart.js';
import { OAuthStates } from './oauth-states.js';
import { AVITO_SCOPES, collectOverview } from './overview.js';
import { accountPage, accountsPage, deadLettersPage, gapsPage, loginPage, messagePage, type Flash } from './pages.js';
import { LOGIN_COOKIE, SESSION_COOKIE, SessionStore, cookie, parseCookies, randomToken, sameSecret, type Session } from './sessions.js';

/** Something the console changed that the daemon should act on at once rather than at its next run. */
export type ConsoleEvent = { kind: 'connected'; accountId: string; provider: string } | { kind: 'retried' };

export interface ConsoleDeps {
  rt: Runtime;
  /** CONSOLE_PASSWORD. */
  password: string;
  /** PUBLIC_URL: the OAuth callbacks live under it; without it the connect buttons are off. */
  publicUrl?: string | undefined;
  /** The daemon's live health (`/healthz`): last poll and webhook per account. */
  health: () => Promise<HealthReport>;
  onEvent?: (e: ConsoleEvent) => void;
  /** Login attempts allowed per client address and minute. Default 5. */
  loginAttemptsPerMinute?: number;
}

/** How many hours the chart covers. */
const CHART_HOURS = 48;
/** How many chats the account page lists. */
const RECENT_CHATS = 50;

const FLASHES: Record<string, Flash> = {
  'retry-none': { kind: 'notice', text: 'Nothing to retry: it was already back in line.' },
};

/**
 * The operator's console (design.md §8.6) at `/console` and the OAuth callbacks at
 * `/oauth/<provider>/callback`. Server-rendered pages behind a password login: a session cookie
 * (HttpOnly, SameSite=Strict, Secure behind HTTPS), login attempts rate-limited, a CSRF token on
 * every action, and OAuth callbacks accepted only with a `state` this console issued.
 */
export function consoleRoutes(deps: ConsoleDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const { rt } = deps;
    const log = rt.log.child({ component: 'console' });
    const sessions = new SessionStore(rt.ledger.db);
    const states = new OAuthStates(rt.ledger.db);
    secretScrubber.add(deps.password);

    await app.register(rateLimit, { global: false });
    // The daemon reads bodies raw for webhooks; console forms are parsed here only.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16_384 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });

    const secure = (req: FastifyRequest) => String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https' || Boolean(deps.publicUrl?.startsWith('https:'));
    const sessionOf = (req: FastifyRequest): Promise<Session | undefined> => sessions.get(parseCookies(req.headers.cookie)[SESSION_COOKIE]);
    const form = (req: FastifyRequest): Record<string, string> => (typeof req.body === 'object' && req.body !== null && !Buffer.isBuffer(req.body) ? (req.body as Record<string, string>) : {});
    const html = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);

    app.addHook('onSend', async (_req, reply, payload) => {
      // Nothing of the console is cached, framed or leaks a URL (codes, states) to another site.
      reply.header('cache-control', 'no-store');
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'");
      return payload;
    });

    app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const status = err.statusCode ?? 500;
      if (status >= 500) log.error({ err: describeError(err), url: req.routeOptions.url }, 'console request failed');
      void html(reply, status, messagePage({ title: status === 429 ? 'Too many attempts' : 'Something went wrong', text: status === 429 ? 'Too many login attempts: wait a minute and try again.' : status >= 500 ? 'The console could not do that; the log says why.' : err.message, kind: 'error', next: '/console/accounts' }));
    });

    /** Every console page and action: a live session; every POST: the session's CSRF token. */
    const guard = async (req: FastifyRequest, reply: FastifyReply): Promise<Session | undefined> => {
      const s = await sessionOf(req);
      if (!s) {
        if (req.method === 'GET') await reply.redirect('/console/login', 303);
        else await html(reply, 403, messagePage({ title: 'Not logged in', text: 'Log in first.', kind: 'error', next: '/console/login' }));
        return undefined;
      }
      if (req.method !== 'GET' && !sameSecret(form(req)._csrf, s.csrf)) {
        log.warn({ url: req.routeOptions.url }, 'console action refused: missing or wrong CSRF token');
        await html(reply, 403, messagePage({ title: 'Refused', text: 'This form is stale or did not come from the console; reload the page and try again.', kind: 'error', next: '/console/accounts' }));
        return undefined;
      }
      return s;
    };

    // ---- login ------------------------------------------------------------------------------

    const showLogin = (req: FastifyRequest, reply: FastifyReply, status: number, error?: string) => {
      const token = randomToken();
      reply.header('set-cookie', cookie(LOGIN_COOKIE, token, { secure: secure(req), path: '/console', maxAgeSeconds: 3600 }));
      return html(reply, status, loginPage({ csrf: token, ...(error ? { error } : {}) }));
    };

    app.get('/console', async (req, reply) => reply.redirect((await sessionOf(req)) ? '/console/accounts' : '/console/login', 303));

    app.get('/console/login', async (req, reply) => ((await sessionOf(req)) ? reply.redirect('/console/accounts', 303) : showLogin(req, reply, 200)));

    app.post('/console/login', { config: { rateLimit: { max: deps.loginAttemptsPerMinute ?? 5, timeWindow: 60_000 } } }, async (req, reply) => {
      const body = form(req);
      const loginToken = parseCookies(req.headers.cookie)[LOGIN_COOKIE];
      if (!loginToken || !sameSecret(body._csrf, loginToken)) return showLogin(req, reply, 403, 'The login form expired; try again.');
      if (!sameSecret(body.password, deps.password)) {
        log.warn({ ip: req.ip }, 'console login refused: wrong password');
        return showLogin(req, reply, 401, 'Wrong password.');
      }
      const s = await sessions.create();
      log.info({ ip: req.ip }, 'console login');
      reply.header('set-cookie', [
        cookie(SESSION_COOKIE, s.id, { secure: secure(req) }),
        cookie(LOGIN_COOKIE, '', { secure: secure(req), path: '/console', maxAgeSeconds: 0 }),
      ]);
      return reply.redirect('/console/accounts', 303);
    });

    app.post('/console/logout', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      await sessions.destroy(s.id);
      reply.header('set-cookie', cookie(SESSION_COOKIE, '', { secure: secure(req), maxAgeSeconds: 0 }));
      return reply.redirect('/console/login', 303);
    });

    // ---- pages ------------------------------------------------------------------------------

    app.get<{ Querystring: { flash?: string; n?: string } }>('/console/accounts', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const overview = await collectOverview(rt, deps.health);
      return html(reply, 200, accountsPage({ overview, csrf: s.csrf, canConnect: Boolean(deps.publicUrl), ...(deps.publicUrl ? { publicUrl: deps.publicUrl } : {}) }));
    });

    app.get<{ Params: { id: string } }>('/console/accounts/:id', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const overview = await collectOverview(rt, deps.health);
      const account = overview.accounts.find((a) => a.id === req.params.id);
      if (!account) return html(reply, 404, messagePage({ title: 'No such account', text: `No account "${req.params.id}" is configured.`, kind: 'error', next: '/console/accounts' }));
      const chats = await recentChats(rt.ledger.db, account.id, RECENT_CHATS);
      const withLinks = await Promise.all(chats.map(async (c) => ({
        ...c,
        links: await Promise.all(c.conversations.map(async (conv) => {
          const instance = rt.connectors.find((x) => x.accountId === account.id && x.definition.id === conv.connector)?.instance;
          return { connector: conv.connector, id: conv.ref.id, url: await instance?.conversationUrl?.(conv.ref).catch(() => undefined) };
        })),
      })));
      const chart = activityChart(await hourlyActivity(rt.ledger.db, account.id, CHART_HOURS));
      return html(reply, 200, accountPage({ account, chats: withLinks, chart, csrf: s.csrf }));
    });

    app.get<{ Querystring: { flash?: string; n?: string } }>('/console/dead-letters', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const n = Number(req.query.n ?? 0);
      const flash: Flash | undefined = req.query.flash === 'retried' ? { kind: 'done', text: `${n} put back in line; the next run sends ${n === 1 ? 'it' : 'them'}.` } : req.query.flash ? FLASHES[req.query.flash] : undefined;
      return html(reply, 200, deadLettersPage({ letters: await listDeadLetters(rt.ledger.db), csrf: s.csrf, ...(flash ? { flash } : {}) }));
    });

    app.post('/console/dead-letters/retry', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const id = form(req).id ?? '';
      if (id !== 'all' && !/^[dr]\d{1,15}$/.test(id)) return html(reply, 400, messagePage({ title: 'Not a dead letter', text: 'Pick a dead letter from the list.', kind: 'error', next: '/console/dead-letters' }));
      const n = await retryDeadLetters(rt.ledger.db, id === 'all' ? 'all' : [id]);
      log.info({ id, n }, 'dead letters put back in line from the console');
      if (n > 0) deps.onEvent?.({ kind: 'retried' });
      return reply.redirect(n > 0 ? `/console/dead-letters?flash=retried&n=${n}` : '/console/dead-letters?flash=retry-none', 303);
    });

    app.get<{ Querystring: { hours?: string } }>('/console/gaps', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const asked = req.query.hours !== undefined;
      const hours = Math.min(720, Math.max(1, Math.floor(Number(req.query.hours ?? 24)) || 24));
      const reports: ReconcileReport[] = [];
      const errors: string[] = [];
      if (asked) {
        // The same comparison as `reconcile --report` (ops/reconcile.ts), read-only.
        const since = Math.floor(Date.now() / 1000) - hours * 3600;
        for (const acc of rt.accounts) {
          try {
            reports.push(await reconcileAccount(rt, acc, since));
          } catch (err) {
            errors.push(`Account ${acc.config.id}: ${describeError(err)}`);
          }
        }
      }
      return html(reply, 200, gapsPage({ hours, reports: asked ? reports : undefined, errors, csrf: s.csrf }));
    });

    // ---- connect ----------------------------------------------------------------------------

    app.post<{ Params: { provider: string; account: string } }>('/console/connect/:provider/:account', async (req, reply) => {
      const s = await guard(req, reply);
      if (!s) return reply;
      const { provider, account } = req.params;
      if (!deps.publicUrl) return html(reply, 400, messagePage({ title: 'Set PUBLIC_URL', text: 'The provider sends you back to PUBLIC_URL/oauth/<provider>/callback: set PUBLIC_URL and restart.', kind: 'error', next: '/console/accounts' }));
      const redirectUri = `${deps.publicUrl}/oauth/${provider}/callback`;
      let target: string | undefined;
      if (provider === 'avito') {
        const acc = rt.accounts.find((a) => a.config.id === account);
        if (acc) {
          const state = await states.issue({ provider, accountId: account, redirectUri });
          // Avito's consent page (authorization.json, flow authorizationCode); it sends the code
          // to the redirect URL registered with the app.
          const url = new URL(acc.config.avito.oauthUrl);
          url.searchParams.set('response_type', 'code');
          url.searchParams.set('client_id', acc.config.avito.clientId!);
          url.searchParams.set('scope', AVITO_SCOPES.join(','));
          url.searchParams.set('state', state);
          target = url.toString();
        }
      } else {
        const oauth = rt.connectors.find((c) => c.accountId === account && c.definition.id === provider)?.instance.oauth;
        if (oauth) target = oauth.authorizeUrl({ state: await states.issue({ provider, accountId: account, redirectUri }), redirectUri });
      }
      if (!target) return html(reply, 404, messagePage({ title: 'Nothing to connect', text: `Account "${account}" has no ${provider} to connect.`, kind: 'error', next: '/console/accounts' }));
      log.info({ provider, account }, 'connect started: operator sent to the consent page');
      return reply.redirect(target, 303);
    });

    app.get<{ Params: { provider: string }; Querystring: Record<string, string> }>('/oauth/:provider/callback', async (req, reply) => {
      const { provider } = req.params;
      const q = req.query;
      secretScrubber.add(q.code);
      const pending = await states.take(q.state, provider);
      if (!pending) {
        log.warn({ provider }, 'OAuth callback refused: a state this console did not issue, or used or expired');
        return html(reply, 400, messagePage({ title: 'Connect refused', text: 'This link was not started from this console, or was already used or expired. Start again with the connect button.', kind: 'error', next: '/console/accounts' }));
      }
      if (q.error || !q.code) {
        log.warn({ provider, account: pending.accountId, error: q.error ?? 'no code' }, 'OAuth consent not given');
        return html(reply, 400, messagePage({ title: 'Not connected', text: `The provider did not give access (${q.error ?? 'no code'}). Start again with the connect button.`, kind: 'error', next: '/console/accounts' }));
      }
      try {
        let name: string;
        if (provider === 'avito') {
          const acc = rt.accounts.find((a) => a.config.id === pending.accountId);
          if (!acc) throw new Error(`account "${pending.accountId}" has no Avito client`);
          const self = await acc.client.connect(q.code);
          name = `Avito (user ${self.userId}${self.name ? `, ${self.name}` : ''})`;
        } else {
          const c = rt.connectors.find((x) => x.accountId === pending.accountId && x.definition.id === provider);
          if (!c?.instance.oauth) throw new Error(`account "${pending.accountId}" has no ${provider} to connect`);
          await c.instance.oauth.exchangeCode({ code: q.code, query: q, redirectUri: pending.redirectUri });
          // The "not connected" error the dispatcher recorded is history now.
          await connectorStore(rt.ledger.db, pending.accountId, provider).deletePrefix('last_error');
          name = c.definition.displayName;
        }
        log.info({ provider, account: pending.accountId }, 'connected from the console');
        deps.onEvent?.({ kind: 'connected', accountId: pending.accountId, provider });
        return html(reply, 200, messagePage({ title: 'Connected', text: `${name} is connected for account "${pending.accountId}". The daemon uses it from now on.`, kind: 'done', next: '/console/accounts' }));
      } catch (err) {
        log.error({ provider, account: pending.accountId, err: describeError(err) }, 'connect failed: the code was refused');
        return html(reply, 502, messagePage({ title: 'Not connected', text: `The code could not be exchanged: ${describeError(err)}`, kind: 'error', next: '/console/accounts' }));
      }
    });
  };
}
