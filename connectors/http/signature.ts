import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks 1.0 (https://www.standardwebhooks.com, spec/standard-webhooks.md):
 * `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, the key being
 * the base64 part of a `whsec_…` secret. The header may list several space-separated signatures
 * (secret rotation); unknown versions are ignored. Receivers check the timestamp within 5 minutes.
 */

/** The spec's tolerance in both directions (the reference verifier's WEBHOOK_TOLERANCE_IN_SECONDS). */
export const TOLERANCE_SECONDS = 5 * 60;

/** The HMAC key of a `whsec_<base64>` secret. */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

/** `v1,<base64 signature>` of one message. */
export function sign(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a signed request at `timestamp` (unix seconds of this attempt). */
export function signedHeaders(key: Buffer, id: string, timestamp: number, body: string | Buffer): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': sign(key, id, timestamp, body) };
}

export type Verification = { ok: true; id: string; timestamp: number } | { ok: false; reason: string };

/** Checks a request's Standard Webhooks headers over its raw body. Never throws. */
export function verify(key: Buffer, headers: Readonly<Record<string, string | undefined>>, body: Buffer, nowSeconds = Math.floor(Date.now() / 1000), tolerance = TOLERANCE_SECONDS): Verification {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (!id || !ts || !sigs) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'webhook-timestamp is not unix seconds' };
  const timestamp = Number(ts);
  if (Math.abs(nowSeconds - timestamp) > tolerance) return { ok: false, reason: 'webhook-timestamp is more than 5 minutes off' };
  const expected = Buffer.from(sign(key, id, timestamp, body).slice(3), 'base64');
  for (const entry of sigs.split(' ')) {
    const [version, value] = entry.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true, id, timestamp };
  }
  return { ok: false, reason: 'no valid v1 signature' };
}
