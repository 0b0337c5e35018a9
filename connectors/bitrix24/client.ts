import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  LocalRequestGate, READ_POLICY, RemoteApiError, WRITE_POLICY, networkCode, parseRetryAfter, withRetry,
  type ConnectorContext, type RemoteErrorKind, type RequestGate, type RetryPolicy,
} from '../../src/connector-sdk/index.js';
import type { B24Config } from './config.js';
import { buildQuery } from './query.js';
import { b24BatchResultSchema, b24EnvelopeSchema, b24ErrorSchema, type B24BatchResult } from './schemas.js';

/** Bitrix24 runs at most 50 commands per `batch` (ERROR_BATCH_LENGTH_EXCEEDED beyond). */
export const BATCH_LIMIT = 50;
/** List methods answer 50 rows per page; `next` is the next page's `start`. */
export const PAGE_SIZE = 50;

export const B24_HINTS: Record<RemoteErrorKind, string> = {
  bad_credentials: 'Bitrix24 refused the incoming webhook: its code (the secret key in BITRIX24_WEBHOOK_URL) is wrong, or the webhook was deleted or has expired. Create one (Applications → Developer resources → Other → Incoming webhook, scopes crm and user) and set BITRIX24_WEBHOOK_URL to its URL.',
  token_expired: 'Bitrix24 says the webhook\'s authorization expired (expired_token): incoming webhooks can be given an expiry date; create a new one and set BITRIX24_WEBHOOK_URL.',
  forbidden: 'Bitrix24 refused access (INVALID_CREDENTIALS, insufficient_scope or user_access_error): tick the scopes crm and user on the incoming webhook, and give its employee the right to add and edit leads, deals and contacts.',
  banned: 'Bitrix24 blocked this webhook for overloading the portal (OVERLOAD_LIMIT). All traffic to this account is stopped; the portal\'s administrator was notified by Bitrix24 and must ask Bitrix24 support to lift the block.',
  rate_limited: 'Bitrix24 rate limit (QUERY_LIMIT_EXCEEDED: 2 requests per second, bursts up to 50, shared by every app on this IP); backing off.',
  server: 'Bitrix24 had an internal error; it will be retried.',
  network: 'Bitrix24 could not be reached: check BITRIX24_WEBHOOK_URL and the network.',
  not_found: 'Bitrix24 does not know this method or object (deleted?), or BITRIX24_WEBHOOK_URL points at the wrong portal.',
  bad_request: 'Bitrix24 rejected the request; the message above says which field.',
  bad_response: 'Bitrix24 answered in an unexpected shape; it was logged.',
  employee_key: '',
  tariff: 'Bitrix24 REST is only available on commercial plans (ACCESS_DENIED): the portal\'s plan does not allow the API.',
};

/** One REST command: a method and its parameters (sent as JSON, or as a query string inside `batch`). */
export interface B24Command {
  method: string;
  params?: Record<string, unknown>;
}

export interface B24ClientOptions {
  config: B24Config;
  log: Logger;
  pauses: Pick<ConnectorContext<unknown>, 'pause' | 'paused'>;
  retry?: Partial<RetryPolicy> | undefined;
  timeoutMs?: number;
  /** The portal's request gate (`ctx.requestGate`): shared by every daemon. Default: in-process. */
  gate?: RequestGate;
}

/**
 * A thin typed Bitrix24 REST client on `fetch` for an incoming webhook (`{base}{method}.json`,
 * POST JSON; b24restdocs `local-integrations/local-webhooks.md`): a client-side leaky bucket (the request gate, GCRA) under
 * the portal's, `batch` with up to 50 commands for one bucket unit, 503 QUERY_LIMIT_EXCEEDED backs
 * off and retries (also for writes: the call was not run), OVERLOAD_LIMIT pauses the account.
 */
export class B24Client {
  /** Bitrix24's per-portal leaky bucket, modelled as a request gate (burst = its capacity). */
  private readonly bucket: RequestGate;
  private readonly readPolicy: RetryPolicy;
  private readonly writePolicy: RetryPolicy;
  /** How long a QUERY_LIMIT_EXCEEDED holds everything: ≥ 1 s (limits.md), shorter when tests shorten backoff. */
  private readonly holdMs: number;
  /** Requests sent (each `batch` counts once, like Bitrix24's bucket counts it). */
  requestCount = 0;
  /** Commands sent inside those requests. */
  commandCount = 0;

  constructor(private readonly o: B24ClientOptions) {
    this.bucket = o.gate ?? new LocalRequestGate(1000 / o.config.requestsPerSecond, o.config.burst);
    this.readPolicy = { ...READ_POLICY, ...o.retry, retryOn: 'transient' };
    this.writePolicy = { ...WRITE_POLICY, ...o.retry, retryOn: 'undelivered' };
    this.holdMs = Math.min(1000, this.writePolicy.maxTimeoutMs);
  }

  /** One method; its `result` validated by `schema`, with `total`/`next` for lists. */
  async call<T>(cmd: B24Command, schema: z.ZodType<T>, opts: { write?: boolean } = {}): Promise<{ result: T; total?: number; next?: number }> {
    const env = await this.send(cmd.method, cmd.params ?? {}, opts.write ?? false, 1);
    const parsed = schema.safeParse(env.result);
    if (!parsed.success) throw this.badShape(cmd.method, parsed.error.issues);
    return { result: parsed.data, ...(env.total !== undefined ? { total: env.total } : {}), ...(env.next !== undefined ? { next: env.next } : {}) };
  }

  /**
   * `batch` (b24restdocs `settings/how-to-call-rest-api/batch.md`): up to 50 commands in one
   * request and one bucket unit, run in order; later ones may use `$result[key][field]`. With
   * `halt: 0` a failed command does not stop the others: its error is in `result_error[key]`.
   */
  async batch(cmds: Readonly<Record<string, B24Command>>, opts: { write?: boolean } = {}): Promise<B24BatchResult> {
    const keys = Object.keys(cmds);
    if (keys.length === 0) return { result: {}, result_error: {}, result_total: {}, result_next: {} };
    if (keys.length > BATCH_LIMIT) throw new Error(`batch takes at most ${BATCH_LIMIT} commands, got ${keys.length}`);
    const cmd: Record<string, string> = {};
    for (const k of keys) {
      const c = cmds[k]!;
      const q = buildQuery((c.params ?? {}) as never);
      cmd[k] = q ? `${c.method}?${q}` : c.method;
    }
    const env = await this.send('batch', { halt: 0, cmd }, opts.write ?? false, keys.length);
    const parsed = b24BatchResultSchema.safeParse(env.result);
    if (!parsed.success) throw this.badShape('batch', parsed.error.issues);
    return parsed.data;
  }

  private async send(method: string, params: Record<string, unknown>, write: boolean, commands: number) {
    const operation = `POST ${method}`;
    const policy = write ? this.writePolicy : this.readPolicy;
    return withRetry(policy, () => this.attempt(method, params, operation, commands), {
      onRetry: ({ error, attempt, waitMs }) => this.o.log.warn({ op: operation, status: error.status, kind: error.kind, attempt, waitMs }, 'Bitrix24 call failed, retrying'),
    });
  }

  private async attempt(method: string, params: Record<string, unknown>, operation: string, commands: number) {
    await this.assertNotPaused(operation);
    await this.bucket.wait();
    // A pause may have begun while this request waited its turn.
    await this.assertNotPaused(operation);
    this.requestCount++;
    this.commandCount += commands;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.o.config.webhookUrl}${method}.json`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        // Bytes, not a string: fetch would copy a string body once more on the JS heap first.
        body: Buffer.from(JSON.stringify(params)),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
      });
      text = await res.text();
    } catch (err) {
      throw new RemoteApiError({ provider: 'Bitrix24', kind: 'network', status: 0, remoteMessage: networkCode(err) ?? (err as Error).message, hint: B24_HINTS.network, operation, cause: err });
    }
    let data: unknown;
    try {
      data = text.trim() ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    const error = b24ErrorSchema.safeParse(data);
    if (!res.ok || error.success) {
      const code = error.success ? error.data.error : '';
      const said = error.success ? [error.data.error, error.data.error_description].filter(Boolean).join(': ') : text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
      const kind = classify(res.status, code);
      if (code === 'QUERY_LIMIT_EXCEEDED' || res.status === 429) this.bucket.holdFor(this.holdMs);
      if (code === 'OVERLOAD_LIMIT') await this.overloaded(said);
      throw new RemoteApiError({ provider: 'Bitrix24', kind, status: res.status, remoteMessage: said.slice(0, 500), hint: B24_HINTS[kind], operation, retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')) });
    }
    const env = b24EnvelopeSchema.safeParse(data);
    if (!env.success) throw this.badShape(operation, env.error.issues, res.status);
    return env.data;
  }

  private badShape(operation: string, issues: readonly { message: string; path: readonly PropertyKey[] }[], status = 200): RemoteApiError {
    this.o.log.warn({ op: operation, issues: issues.slice(0, 3) }, 'Bitrix24 answer did not match the expected shape');
    const first = issues[0];
    return new RemoteApiError({ provider: 'Bitrix24', kind: 'bad_response', status, remoteMessage: first ? `${first.path.join('.')}: ${first.message}` : 'unexpected shape', hint: B24_HINTS.bad_response, operation });
  }

  // ---- OVERLOAD_LIMIT ----------------------------------------------------------------------

  private async assertNotPaused(operation: string): Promise<void> {
    const p = await this.o.pauses.paused();
    if (p) throw new RemoteApiError({ provider: 'Bitrix24', kind: 'banned', status: 503, remoteMessage: p.reason, hint: B24_HINTS.banned, operation });
  }

  /** OVERLOAD_LIMIT is a manual block by Bitrix24 support: stop everything, say why and until when. */
  private async overloaded(said: string): Promise<void> {
    const until = Date.now() + this.o.config.overloadPauseMinutes * 60_000;
    const reason = `Bitrix24 blocked the webhook for overload (${said}); traffic stopped until ${new Date(until).toISOString()}, then one call checks again. Ask Bitrix24 support to lift the block.`;
    await this.o.pauses.pause(until, reason);
    this.o.log.error({ until: new Date(until).toISOString() }, 'Bitrix24 OVERLOAD_LIMIT: all traffic to the account stops');
  }
}

/** Bitrix24's error codes (b24restdocs `_includes/system-errors.md`) as the project's error kinds. */
export function classify(status: number, code: string): RemoteErrorKind {
  switch (code) {
    case 'QUERY_LIMIT_EXCEEDED':
      return 'rate_limited';
    case 'OVERLOAD_LIMIT':
      return 'banned';
    case 'expired_token':
      return 'token_expired';
    case 'NO_AUTH_FOUND':
    case 'invalid_token':
    case 'PORTAL_DELETED':
      return 'bad_credentials';
    case 'INVALID_CREDENTIALS':
    case 'insufficient_scope':
    case 'user_access_error':
      return 'forbidden';
    case 'ACCESS_DENIED':
      return 'tariff';
    case 'ERROR_METHOD_NOT_FOUND':
    case 'NOT_FOUND':
      return 'not_found';
    case 'INTERNAL_SERVER_ERROR':
      return 'server';
    default:
  }
  // The time-based "operating" limit has been seen as 429 (GUESS, reference B.2): a rate limit too.
  if (status === 429 || status === 503) return 'rate_limited';
  if (status === 401) return 'bad_credentials';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status >= 500) return 'server';
  return 'bad_request';
}
