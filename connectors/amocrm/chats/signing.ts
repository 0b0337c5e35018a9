import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * amoCRM Chats API (amojo) request signing, exactly as amoCRM's docs give it
 * (https://www.amocrm.ru/developers/content/chats/chat-start, "Подпись запроса"; the worked
 * examples in chat-step-by-step are this module's unit-test vectors):
 *
 *   Content-MD5 = lowercase hex MD5 of the exact body bytes ("" for GET)
 *   X-Signature = lowercase hex HMAC-SHA1(channel secret,
 *                   METHOD \n Content-MD5 \n Content-Type \n Date \n path)
 *
 * `path` has no scheme, host or query string. `Date` is computed once and used for both the
 * header and the signature (the docs' own PHP helper calls date() twice and can straddle a second).
 */

/** The only content type amojo accepts. */
export const AMOJO_CONTENT_TYPE = 'application/json';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 2822 with a numeric zone, as the docs write it: `Wed, 15 Dec 2021 23:12:55 +0000`. */
export function rfc2822(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[date.getUTCDay()]}, ${p(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())} +0000`;
}

export function md5Hex(body: string | Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

/** The signature of one request (header values exactly as sent; a missing one is ""). */
export function requestSignature(secret: string, method: string, contentMd5: string, contentType: string, date: string, path: string): string {
  return createHmac('sha1', secret).update([method.toUpperCase(), contentMd5, contentType, date, path].join('\n')).digest('hex');
}

export interface SignedHeaders {
  'Date': string;
  'Content-Type': string;
  'Content-MD5': string;
  'X-Signature': string;
}

/**
 * Headers for one amojo request. `path` may carry a query string: it is left out of the
 * signature (the history call signs `/…/history` without `?limit=`).
 */
export function signRequest(o: { secret: string; method: string; path: string; body: string; date?: Date | string }): SignedHeaders {
  const date = typeof o.date === 'string' ? o.date : rfc2822(o.date ?? new Date());
  const md5 = md5Hex(o.body);
  const path = o.path.split('?')[0]!;
  return { 'Date': date, 'Content-Type': AMOJO_CONTENT_TYPE, 'Content-MD5': md5, 'X-Signature': requestSignature(o.secret, o.method, md5, AMOJO_CONTENT_TYPE, date, path) };
}

/** Hex HMAC-SHA1 of a hook body with the channel secret (amoCRM → us signs the body only). */
export function hookSignature(secret: string, body: Buffer | string): string {
  return createHmac('sha1', secret).update(body).digest('hex');
}

/**
 * Checks an outgoing hook's `X-Signature` against the raw bytes, timing-safe. The maintained
 * amojo libraries strip trailing newlines before hashing (fcritic/amojo-api-client
 * `trim($body, "\n")`, tmedvedevv/amojowrapper `strip("\r\n")`), so both forms are accepted.
 */
export function verifyHookSignature(secret: string, body: Buffer, given: string | undefined): boolean {
  if (!given || !/^[0-9a-fA-F]{40}$/.test(given.trim())) return false;
  const want = Buffer.from(given.trim().toLowerCase(), 'hex');
  const forms = [body];
  const trimmed = Buffer.from(body.toString('utf8').replace(/^[\r\n]+|[\r\n]+$/g, ''), 'utf8');
  if (!trimmed.equals(body)) forms.push(trimmed);
  return forms.some((b) => timingSafeEqual(Buffer.from(hookSignature(secret, b), 'hex'), want));
}

/** Checks a signed request the way amojo does (the sandbox uses this): the reason when it fails. */
export function checkSignedRequest(o: { secret: string; method: string; path: string; body: Buffer; headers: Record<string, string | string[] | undefined>; now?: number }): string | undefined {
  const h = (k: string) => {
    const v = o.headers[k.toLowerCase()];
    return Array.isArray(v) ? v[0] ?? '' : v ?? '';
  };
  const date = h('date');
  const md5 = h('content-md5');
  const type = h('content-type');
  if (!date || !md5 || !h('x-signature')) return 'Date, Content-MD5 and X-Signature are required';
  if (type !== AMOJO_CONTENT_TYPE) return `Content-Type must be ${AMOJO_CONTENT_TYPE}`;
  if (md5 !== md5Hex(o.body)) return 'Content-MD5 does not match the body';
  const at = Date.parse(date);
  if (!Number.isFinite(at) || Math.abs((o.now ?? Date.now()) - at) > 15 * 60_000) return 'Date is missing or more than 15 minutes off';
  const want = requestSignature(o.secret, o.method, md5, type, date, o.path.split('?')[0]!);
  const given = h('x-signature').toLowerCase();
  if (given.length !== want.length || !timingSafeEqual(Buffer.from(given), Buffer.from(want))) return 'X-Signature is wrong';
  return undefined;
}
