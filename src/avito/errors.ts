import { RemoteApiError, type RemoteErrorKind } from '../errors.js';
import { networkCode, parseRetryAfter } from '../http/retry-policy.js';
import { avitoErrorBodySchema } from './schemas.js';

/** What to tell the user for each kind of Avito failure. */
export const AVITO_HINTS: Record<RemoteErrorKind, string> = {
  tariff: 'Your Avito tariff does not include the Messenger API (402 Payment Required): it needs a paid tariff with API access (Avito Pro → Tariffs). Nothing syncs until then.',
  employee_key: "Avito refused a chat operation although the token is valid: this key looks like an employee's. The Messenger API works only with the company's main account key (Messenger guide, account hierarchy): use the main account's client_id and client_secret.",
  bad_credentials: "Avito rejected the app credentials: copy AVITO_CLIENT_ID and AVITO_CLIENT_SECRET again from Avito Pro → Settings → API integration (the company's main account).",
  token_expired: 'The Avito token was refused even after a refresh: check that the app is still active and its credentials are current.',
  forbidden: "Avito refused access: check that the app has the messenger:read and messenger:write scopes and that the key is the company's main account key.",
  not_found: 'Avito does not know this chat, message or account: check AVITO_USER_ID and the ids you passed.',
  rate_limited: 'Avito is rate-limiting this account; the daemon backs off and tries again. Lower AVITO_REQUESTS_PER_SECOND if this persists.',
  server: 'Avito had an internal error; the daemon tries again later.',
  network: 'Avito could not be reached: check the network and AVITO_API_URL.',
  bad_request: 'Avito rejected the request as malformed; if the message above does not explain it, please report it as a bug.',
  banned: 'Avito blocked this account from the API: contact Avito support.',
  bad_response: 'Avito answered in a shape avito-sync does not understand; it was logged. Please report it if it persists.',
};

/** Avito's own words from an error body: JSON `{error:{message}}`, other JSON, HTML or text. */
export function remoteMessageOf(body: string, contentType: string | null): string {
  const text = body.trim();
  if (!text) return '';
  if (contentType?.includes('json') || text.startsWith('{')) {
    try {
      const parsed = avitoErrorBodySchema.safeParse(JSON.parse(text));
      if (parsed.success) {
        const e = parsed.data.error;
        const msg = typeof e === 'string' ? e : e?.message;
        const fields = typeof e === 'object' && e?.fields ? ` ${JSON.stringify(e.fields)}` : '';
        const desc = parsed.data.error_description;
        const out = [msg ?? parsed.data.message, desc].filter(Boolean).join(': ') + fields;
        if (out) return out.slice(0, 300);
      }
    } catch {
      /* not JSON after all */
    }
  }
  const title = /<title>([^<]*)<\/title>/i.exec(text);
  if (title) return title[1]!.trim().slice(0, 200);
  return text.replace(/\s+/g, ' ').slice(0, 200);
}

export function kindForStatus(status: number): RemoteErrorKind {
  if (status === 402) return 'tariff';
  if (status === 401) return 'token_expired';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server';
  return 'bad_request';
}

export function avitoHttpError(init: {
  status: number;
  body: string;
  contentType: string | null;
  retryAfter: string | null;
  operation: string;
  kind?: RemoteErrorKind;
}): RemoteApiError {
  const kind = init.kind ?? kindForStatus(init.status);
  return new RemoteApiError({
    provider: 'Avito',
    kind,
    status: init.status,
    remoteMessage: remoteMessageOf(init.body, init.contentType),
    hint: AVITO_HINTS[kind],
    operation: init.operation,
    retryAfterSeconds: parseRetryAfter(init.retryAfter),
  });
}

export function avitoNetworkError(operation: string, cause: unknown): RemoteApiError {
  const code = networkCode(cause);
  const isTimeout = (cause as Error)?.name === 'TimeoutError' || (cause as Error)?.name === 'AbortError';
  return new RemoteApiError({
    provider: 'Avito',
    kind: 'network',
    status: 0,
    remoteMessage: isTimeout ? 'timed out' : code ?? (cause as Error)?.message ?? 'connection failed',
    hint: AVITO_HINTS.network,
    operation,
    cause,
  });
}

export function withKind(err: RemoteApiError, kind: RemoteErrorKind): RemoteApiError {
  return new RemoteApiError({
    provider: err.provider,
    kind,
    status: err.status,
    remoteMessage: err.remoteMessage,
    hint: AVITO_HINTS[kind],
    operation: err.operation,
    retryAfterSeconds: err.retryAfterSeconds,
    cause: err,
  });
}
