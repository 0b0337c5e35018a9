import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Links to kept voice files, served by the daemon at `/files/voice/<account>/<voice id>`. The
 * signature (HMAC of the path and the expiry with the webhook secret) makes a link unguessable
 * without making the files public, and the expiry makes it stop working (issue 9, item 9):
 * by default when the file itself is deleted (RETENTION_DAYS).
 */
function sign(secret: string, accountId: string, voiceId: string, exp: number): string {
  return createHmac('sha256', secret).update(`${accountId}/${voiceId}/${exp}`).digest('base64url').slice(0, 32);
}

/** A link valid for `ttlSeconds` from `now` (epoch ms). */
export function voiceLink(publicUrl: string, secret: string, accountId: string, voiceId: string, ttlSeconds: number, now = Date.now()): string {
  const exp = Math.floor(now / 1000) + ttlSeconds;
  return `${publicUrl}/files/voice/${encodeURIComponent(accountId)}/${encodeURIComponent(voiceId)}?exp=${exp}&sig=${sign(secret, accountId, voiceId, exp)}`;
}

/** True when the signature is right and the link has not expired. */
export function voiceSignatureOk(secret: string, accountId: string, voiceId: string, sig: string | undefined, exp: string | undefined, now = Date.now()): boolean {
  if (!sig || !exp || !/^\d{1,12}$/.test(exp)) return false;
  const expires = Number(exp);
  if (expires * 1000 <= now) return false;
  const a = Buffer.from(sign(secret, accountId, voiceId, expires));
  const b = Buffer.from(sig);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** How long voice links live: as long as the files are kept (RETENTION_DAYS; 0 = kept forever, ten years). */
export function voiceLinkTtlSeconds(retentionDays: number): number {
  return (retentionDays > 0 ? retentionDays : 3650) * 86_400;
}
