import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Links to kept voice files, served by the daemon at `/files/voice/<account>/<voice id>`. The
 * signature (HMAC of the path with the webhook secret) makes a link unguessable without making
 * the files public.
 */
function sign(secret: string, accountId: string, voiceId: string): string {
  return createHmac('sha256', secret).update(`${accountId}/${voiceId}`).digest('base64url').slice(0, 32);
}

export function voiceLink(publicUrl: string, secret: string, accountId: string, voiceId: string): string {
  return `${publicUrl}/files/voice/${encodeURIComponent(accountId)}/${encodeURIComponent(voiceId)}?sig=${sign(secret, accountId, voiceId)}`;
}

export function voiceSignatureOk(secret: string, accountId: string, voiceId: string, sig: string | undefined): boolean {
  if (!sig) return false;
  const a = Buffer.from(sign(secret, accountId, voiceId));
  const b = Buffer.from(sig);
  return a.length === b.length && timingSafeEqual(a, b);
}
