import { randomBytes } from 'node:crypto';
import type { LedgerDb } from '../ledger/database.js';
import { getSetting, setSetting } from '../ledger/settings.js';
import { secretScrubber } from '../log/logger.js';

const KEY = 'webhook_secret';

/** `WEBHOOK_SECRET`, else the one generated earlier and kept in the ledger, else a new one. */
export async function webhookSecret(db: LedgerDb, configured: string | undefined): Promise<string> {
  let secret = configured ?? (await getSetting(db, KEY));
  if (!secret) {
    secret = randomBytes(24).toString('base64url');
    await setSetting(db, KEY, secret);
  }
  secretScrubber.add(secret);
  return secret;
}

export function avitoWebhookUrl(publicUrl: string, secret: string): string {
  return `${publicUrl}/webhooks/avito/${secret}`;
}
