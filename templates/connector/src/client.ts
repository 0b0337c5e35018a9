import { READ_POLICY, RemoteApiError, WRITE_POLICY, parseRetryAfter, withRetry, type RemoteErrorKind, type RetryPolicy } from 'avito-crm-sync/connector';

/** HTTP status → what the core does about it (retry, give up on the item, stop the run). */
const KINDS: Record<number, RemoteErrorKind> = { 400: 'bad_request', 401: 'bad_credentials', 403: 'forbidden', 404: 'not_found', 422: 'bad_request', 429: 'rate_limited' };

/**
 * A small client for the CRM's REST API on fetch. Reads retry transient failures; writes retry
 * only what surely did not arrive (429, refused connections): the connector reconciles the rest
 * with `findDelivered`.
 */
export class __CLASS__Client {
  constructor(private readonly o: { baseUrl: string; token: string; retry?: Partial<RetryPolicy> }) {}

  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const operation = `${method} ${path.split('?')[0]}`;
    const policy: RetryPolicy = method === 'GET' ? { ...READ_POLICY, ...this.o.retry, retryOn: 'transient' } : { ...WRITE_POLICY, ...this.o.retry, retryOn: 'undelivered' };
    return withRetry(policy, async () => {
      let res: Response;
      try {
        res = await fetch(`${this.o.baseUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (cause) {
        throw new RemoteApiError({ provider: '__ID__', kind: 'network', status: 0, remoteMessage: '', hint: 'Check that the CRM is reachable.', operation, cause });
      }
      const text = await res.text();
      if (!res.ok) {
        const kind = KINDS[res.status] ?? (res.status >= 500 ? 'server' : 'bad_request');
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        throw new RemoteApiError({
          provider: '__ID__', kind, status: res.status, remoteMessage: text.slice(0, 200), operation,
          hint: kind === 'bad_credentials' ? 'Check __ENV___TOKEN: the CRM refused the token.' : 'See what the CRM said.',
          ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
        });
      }
      return (text ? JSON.parse(text) : undefined) as T;
    });
  }
}
