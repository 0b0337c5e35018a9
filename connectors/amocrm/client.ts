import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  LocalRequestGate, READ_POLICY, RemoteApiError, WRITE_POLICY, networkCode, parseRetryAfter, withRetry,
  type ConnectorContext, type ConnectorStore, type LockedConnectorStore, type RemoteErrorKind, type RequestGate, type RetryPolicy,
} from '../../src/connector-sdk/index.js';
import type { AmoConfig } from './config.js';
import { amoProblemSchema, amoTokenSchema } from './schemas.js';

export const AMO_HINTS: Record<RemoteErrorKind, string> = {
  bad_credentials: 'amoCRM refused the credentials: check AMOCRM_ACCESS_TOKEN (or the OAuth client id and secret, then connect amoCRM again from the console).',
  token_expired: 'amoCRM refused the token even after a refresh: issue a new long-lived token, or connect amoCRM again from the console.',
  forbidden: "amoCRM refused access: the token's user lacks rights for this (leads, notes, custom fields).",
  banned: 'amoCRM blocked this integration for too many requests (403 page). All traffic to this account is stopped for a while instead of retrying into a longer ban; contact amoCRM support if it persists.',
  rate_limited: 'amoCRM rate limit (7 requests per second); backing off.',
  server: 'amoCRM had an internal error; it will be retried.',
  network: 'amoCRM could not be reached: check AMOCRM_BASE_URL and the network.',
  not_found: 'amoCRM does not know this object (deleted?), or AMOCRM_BASE_URL points at the wrong account.',
  bad_request: 'amoCRM rejected the request; the message above says which field.',
  bad_response: 'amoCRM answered in an unexpected shape; it was logged.',
  employee_key: '',
  tariff: 'amoCRM says the account cannot use the API on its current plan.',
};

export interface AmoRequest<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | readonly (string | number)[] | undefined>;
  json?: unknown;
  schema: z.ZodType<T>;
  /** Default: reads retry transient failures; writes only 429 and refused connections. */
  policy?: RetryPolicy;
  /** A write that sets fields to given values (a PATCH of a name): repeating it does no harm, so it is retried like a read. Default false. */
  idempotent?: boolean;
}

export interface AmoClientOptions {
  config: AmoConfig;
  store: ConnectorStore;
  /** The account's pause controls (`ctx.pause`, `ctx.paused`): a ban stops traffic across restarts. */
  pauses: Pick<ConnectorContext<unknown>, 'pause' | 'paused'>;
  log: Logger;
  registerSecret: (s: string | undefined | null) => void;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  /** The account's request gate (`ctx.requestGate`): shared by every daemon on the ledger. Default: in-process. */
  gate?: RequestGate;
}

const REFRESH_AHEAD_MS = 10 * 60 * 1000;

/**
 * A thin typed amoCRM REST v4 client on `fetch`: one limiter per amoCRM account under 7 rps,
 * 429 backs off, a 403 ban (an HTML page) stops all traffic to the account for a while,
 * problem+json errors are explained, `204 No Content` lists are empty lists.
 */
export class AmoClient {
  private readonly queue: PQueue;
  private readonly gate: RequestGate;
  private readonly readPolicy: RetryPolicy;
  private readonly writePolicy: RetryPolicy;
  private token: { value: string; expiresAt: number } | undefined;
  private refreshing: Promise<string> | undefined;
  private pausedUntil: number | undefined;
  requestCount = 0;

  constructor(private readonly o: AmoClientOptions) {
    // Two in flight at most, and starts evenly spaced: never more than 7 in any sliding second.
    this.queue = new PQueue({ concurrency: 2 });
    this.gate = o.gate ?? new LocalRequestGate(Math.ceil(1000 / o.config.requestsPerSecond));
    this.readPolicy = { ...READ_POLICY, ...o.retry, retryOn: 'transient' };
    this.writePolicy = { ...WRITE_POLICY, ...o.retry, retryOn: 'undelivered' };
    if (o.config.accessToken) {
      this.token = { value: o.config.accessToken, expiresAt: Number.POSITIVE_INFINITY };
      o.registerSecret(o.config.accessToken);
    }
  }

  get queueDepth(): number {
    return this.queue.size + this.queue.pending;
  }

  /** Calls one endpoint; `undefined` for 204 No Content. */
  async request<T>(r: AmoRequest<T>): Promise<T | undefined> {
    await this.assertNotPaused(`${r.method} ${r.path}`);
    const policy = r.policy ?? (r.method === 'GET' || r.idempotent ? this.readPolicy : this.writePolicy);
    const token = await this.accessToken();
    try {
      return await withRetry(policy, () => this.queue.add(() => this.attempt(r, token)), {
        onRetry: ({ error, attempt, waitMs }) => this.o.log.warn({ op: `${r.method} ${r.path}`, status: error.status, attempt, waitMs }, 'amoCRM call failed, retrying'),
      });
    } catch (err) {
      if (err instanceof RemoteApiError && err.status === 401 && !this.o.config.accessToken) {
        const fresh = await this.refresh('401', token);
        return withRetry(policy, () => this.queue.add(() => this.attempt(r, fresh)));
      }
      throw err;
    }
  }

  private async attempt<T>(r: AmoRequest<T>, token: string): Promise<T | undefined> {
    await this.assertNotPaused(`${r.method} ${r.path}`);
    await this.gate.wait();
    const url = new URL((await this.baseUrl()) + r.path);
    for (const [k, v] of Object.entries(r.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) url.searchParams.append(k, String(x));
      else url.searchParams.set(k, String(v));
    }
    const operation = `${r.method} ${r.path.replace(/\/\d+(?=\/|$)/g, '/{id}')}`;
    this.requestCount++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: r.method,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(r.json !== undefined ? { 'content-type': 'application/json' } : {}) },
        // Bytes, not a string: fetch copies a string body once more on the JS heap (toUSVString)
        // before encoding it, and a 250-note body is a large object straight in the old generation.
        body: r.json !== undefined ? Buffer.from(JSON.stringify(r.json)) : null,
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
      });
      text = await res.text();
    } catch (err) {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'network', status: 0, remoteMessage: networkCode(err) ?? (err as Error).message, hint: AMO_HINTS.network, operation, cause: err });
    }
    if (res.status === 204) return undefined;
    const contentType = res.headers.get('content-type') ?? '';
    if (!res.ok) {
      const html = contentType.includes('text/html') || /^\s*</.test(text);
      if (res.status === 403 && html) await this.pause(text);
      // Give the window room before anything else goes out.
      if (res.status === 429) this.gate.holdFor(1000);
      const kind: RemoteErrorKind = res.status === 403 && html ? 'banned' : res.status === 401 ? 'token_expired' : res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : res.status === 429 ? 'rate_limited' : res.status === 402 ? 'tariff' : res.status >= 500 ? 'server' : 'bad_request';
      throw new RemoteApiError({ provider: 'amoCRM', kind, status: res.status, remoteMessage: problemText(text, contentType), hint: AMO_HINTS[kind], operation, retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')) });
    }
    let data: unknown;
    try {
      data = text.trim() ? JSON.parse(text) : {};
    } catch {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_response', status: res.status, remoteMessage: `not JSON: ${text.slice(0, 80)}`, hint: AMO_HINTS.bad_response, operation });
    }
    const parsed = r.schema.safeParse(data);
    if (!parsed.success) {
      this.o.log.warn({ op: operation, issues: parsed.error.issues.slice(0, 3) }, 'amoCRM answer did not match the expected shape');
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_response', status: res.status, remoteMessage: parsed.error.issues[0]?.message ?? 'unexpected shape', hint: AMO_HINTS.bad_response, operation });
    }
    return parsed.data;
  }

  // ---- ban ---------------------------------------------------------------------------------

  private async assertNotPaused(operation: string): Promise<void> {
    if (this.pausedUntil === undefined) this.pausedUntil = (await this.o.pauses.paused())?.until ?? 0;
    if (this.pausedUntil > Date.now()) {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'banned', status: 403, remoteMessage: `traffic stopped until ${new Date(this.pausedUntil).toISOString()}`, hint: AMO_HINTS.banned, operation });
    }
  }

  private async pause(html: string): Promise<void> {
    const until = Date.now() + this.o.config.banPauseMinutes * 60_000;
    this.pausedUntil = until;
    const title = /<title>([^<]*)<\/title>/i.exec(html)?.[1]?.trim() ?? '403';
    await this.o.pauses.pause(until, `amoCRM blocked the integration (403 page "${title}"); traffic stopped until ${new Date(until).toISOString()}`);
    this.o.log.error({ until: new Date(until).toISOString() }, 'amoCRM blocked this integration: all traffic to the account stops for a while');
  }

  // ---- OAuth -------------------------------------------------------------------------------

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt - REFRESH_AHEAD_MS > Date.now()) return this.token.value;
    if (!this.token) {
      const stored = await this.o.store.get('oauth_access_token');
      const exp = Number((await this.o.store.get('oauth_expires_at')) ?? 0);
      if (stored && exp - REFRESH_AHEAD_MS > Date.now()) {
        this.o.registerSecret(stored);
        this.token = { value: stored, expiresAt: exp };
        return stored;
      }
    }
    return this.refresh('expiring');
  }

  /**
   * OAuth: POST /oauth2/access_token. The rotated refresh token is saved before the access token
   * is used. `stale` is the access token found expiring or refused (default: the one in use): a
   * refresh happens only while the ledger still holds that one.
   */
  refresh(reason: string, stale: string | undefined = this.token?.value): Promise<string> {
    this.refreshing ??= this.doRefresh(reason, stale).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(reason: string, stale: string | undefined): Promise<string> {
    const c = this.o.config;
    if (c.accessToken) throw new RemoteApiError({ provider: 'amoCRM', kind: 'token_expired', status: 401, remoteMessage: 'the long-lived token was refused', hint: AMO_HINTS.token_expired, operation: 'auth' });
    const notConnected = () => new RemoteApiError({ provider: 'amoCRM', kind: 'bad_credentials', status: 0, remoteMessage: 'not connected yet: no refresh token and no AMOCRM_AUTH_CODE', hint: NOT_CONNECTED_HINT, operation: 'POST /oauth2/access_token' });
    if (!c.authCode && !(await this.o.store.get('oauth_refresh_token'))) throw notConnected();
    // Outside the lock: on SQLite the plain store waits for it, and on PostgreSQL the gate is a ledger row of its own.
    const baseUrl = await this.baseUrl();
    await this.gate.wait();
    // Several daemons deliver for one account, so two processes can find the token stale at once;
    // the refresh token works once (facts.md: amoCRM answers the second use with 400 "Token has
    // been revoked"). Under the store's lock, whoever comes second finds the pair the first one
    // stored and uses it instead of spending the old refresh token again.
    const fresh = await this.o.store.update('oauth_refresh_token', async (refreshToken, store): Promise<{ value: string; expiresAt: number }> => {
      const stored = await store.get('oauth_access_token');
      const expiresAt = Number((await store.get('oauth_expires_at')) ?? 0);
      if (stored && stored !== stale && expiresAt - REFRESH_AHEAD_MS > Date.now()) {
        this.o.registerSecret(stored);
        this.o.log.info({ reason }, 'amoCRM token already refreshed by another process; using it');
        return { value: stored, expiresAt };
      }
      if (!refreshToken && !c.authCode) throw notConnected();
      // The stored grant first; when amoCRM refuses it (spent, or older than 3 months) and a code is
      // configured, the code: an operator who set a fresh AMOCRM_AUTH_CODE expects it to be used.
      if (refreshToken) {
        // The redirect URI of the code that started this chain of refresh tokens: amoCRM checks it.
        const redirectUri = (await store.get('oauth_redirect_uri')) ?? c.redirectUri;
        try {
          return await this.requestToken(baseUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, redirect_uri: redirectUri }, reason, 'refresh', store);
        } catch (err) {
          if (!c.authCode || !(err instanceof RemoteApiError && [400, 401, 403].includes(err.status))) throw err;
          this.o.log.warn({ status: err.status }, 'amoCRM refused the stored refresh token; trying the configured AMOCRM_AUTH_CODE');
        }
      }
      return this.requestToken(baseUrl, { grant_type: 'authorization_code', code: c.authCode, redirect_uri: c.redirectUri }, reason, refreshToken ? 'code after refresh' : 'code', store);
    });
    // Only now, committed, does the new pair serve requests (the spent refresh token is gone for good).
    this.token = fresh;
    return fresh.value;
  }

  /**
   * The console's connect flow: exchanges the callback's code at once (it lives 20 minutes and
   * works once) at `baseUrl`, keeps that host and the redirect URI for later refreshes, and saves
   * the tokens before anything uses them.
   */
  async exchangeCode(code: string, baseUrl: string, redirectUri: string): Promise<void> {
    await this.requestToken(baseUrl, { grant_type: 'authorization_code', code, redirect_uri: redirectUri }, 'connect', 'code');
    await this.o.store.set('oauth_base_url', baseUrl);
    await this.o.store.set('oauth_redirect_uri', redirectUri);
  }

  /** Whether there is anything to authenticate with: a long-lived token, a code, or a kept refresh token. */
  async hasCredentials(): Promise<boolean> {
    return Boolean(this.o.config.accessToken || this.o.config.authCode || (await this.o.store.get('oauth_refresh_token')));
  }

  /** AMOCRM_BASE_URL, else the host the console's connect flow learned from amoCRM's `referer`. */
  async baseUrl(): Promise<string> {
    const url = this.o.config.baseUrl ?? (await this.o.store.get('oauth_base_url'));
    if (!url) throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_credentials', status: 0, remoteMessage: 'not connected yet: no AMOCRM_BASE_URL and no account host from a connect', hint: NOT_CONNECTED_HINT, operation: 'connect' });
    return url;
  }

  /** POST /oauth2/access_token (facts.md: JSON body with client_id, client_secret, grant_type, code|refresh_token, redirect_uri). */
  private async requestToken(
    baseUrl: string, grant: Record<string, string | undefined>, reason: string, kind: 'refresh' | 'code' | 'code after refresh',
    /** Inside `store.update`'s lock: that store, and the gate already waited for. */
    locked?: LockedConnectorStore,
  ): Promise<{ value: string; expiresAt: number }> {
    const c = this.o.config;
    const body = { client_id: c.clientId, client_secret: c.clientSecret, ...grant };
    if (!locked) await this.gate.wait();
    const store = locked ?? this.o.store;
    const res = await fetch(`${baseUrl}/oauth2/access_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) }).catch((err: unknown) => {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'network', status: 0, remoteMessage: networkCode(err) ?? String(err), hint: AMO_HINTS.network, operation: 'POST /oauth2/access_token', cause: err });
    });
    this.requestCount++;
    const text = await res.text();
    if (!res.ok) {
      const hint = kind === 'refresh' ? 'amoCRM refused the refresh token (used, or older than 3 months): connect amoCRM again from the console (or set a fresh AMOCRM_AUTH_CODE).'
        : kind === 'code after refresh' ? 'amoCRM refused both the stored refresh token and AMOCRM_AUTH_CODE (a code works once and for 20 minutes): connect amoCRM again from the console, or set a fresh code and restart.'
          : AMO_HINTS.bad_credentials;
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_credentials', status: res.status, remoteMessage: problemText(text, res.headers.get('content-type') ?? ''), hint, operation: 'POST /oauth2/access_token' });
    }
    const token = amoTokenSchema.parse(JSON.parse(text));
    this.o.registerSecret(token.access_token);
    this.o.registerSecret(token.refresh_token);
    const expiresAt = Date.now() + token.expires_in * 1000;
    // The refresh token works once: it must be durable before anything uses the new pair.
    await store.set('oauth_refresh_token', token.refresh_token);
    await store.set('oauth_access_token', token.access_token);
    await store.set('oauth_expires_at', String(expiresAt));
    if (!locked) this.token = { value: token.access_token, expiresAt };
    this.o.log.info({ reason, grant: grant.grant_type }, 'amoCRM token refreshed');
    return { value: token.access_token, expiresAt };
  }
}

/** What an operator does when OAuth is configured but nothing is connected yet. */
export const NOT_CONNECTED_HINT = 'Connect amoCRM from the console (/console, the connect button), or set AMOCRM_REDIRECT_URI and a fresh AMOCRM_AUTH_CODE by hand.';

/**
 * The account host amoCRM names in the consent callback's `referer` (`shop.amocrm.ru`), as a base
 * URL — only amoCRM's and Kommo's own domains: the client secret is sent there.
 */
export function baseUrlFromReferer(referer: string | undefined): string | undefined {
  const host = (referer ?? '').trim().replace(/^https:\/\//i, '').replace(/\/+$/, '').toLowerCase();
  return /^[a-z0-9][a-z0-9-]{0,62}\.(amocrm\.ru|amocrm\.com|kommo\.com)$/.test(host) ? `https://${host}` : undefined;
}

/** amoCRM's own words: problem+json title, detail and validation errors; an HTML page's title; else text. */
export function problemText(body: string, contentType: string): string {
  const t = body.trim();
  if (!t) return '';
  if (contentType.includes('json') || t.startsWith('{')) {
    try {
      const p = amoProblemSchema.safeParse(JSON.parse(t));
      if (p.success) {
        const v = p.data['validation-errors'];
        const parts = [p.data.title, p.data.detail].filter(Boolean).join(': ');
        return (parts + (v?.length ? ` ${JSON.stringify(v).slice(0, 300)}` : '')).slice(0, 500);
      }
    } catch {
      /* not JSON */
    }
  }
  const title = /<title>([^<]*)<\/title>/i.exec(t);
  if (title) return title[1]!.trim();
  return t.replace(/\s+/g, ' ').slice(0, 200);
}
