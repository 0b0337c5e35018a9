import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/database.js';
import type { VoiceKeeper } from '../avito/voice-keeper.js';
import { blankWebhookBodiesBefore } from '../ledger/webhook-events.js';
import { voiceFilesKeptBefore, voiceRetired } from '../ledger/voice-files.js';

export interface RetentionReport {
  webhookBodies: number;
  voiceFiles: number;
}

/**
 * RETENTION_DAYS (issue 9; a privacy control): raw webhook bodies and kept voice files hold
 * buyers' personal data, so they are deleted once older than `days` (0 keeps them). The webhook
 * event rows stay without their bodies (their ids still drop late duplicates); messages in the
 * ledger stay (they are the sync's record). Returns how many of each were removed.
 */
export async function applyRetention(ledger: Ledger, voice: VoiceKeeper, days: number, log: Logger, now = Date.now()): Promise<RetentionReport> {
  if (days <= 0) return { webhookBodies: 0, voiceFiles: 0 };
  const cutoff = now - days * 86_400_000;
  const bodies = await blankWebhookBodiesBefore(ledger.db, cutoff);
  let files = 0;
  for (const f of await voiceFilesKeptBefore(ledger.db, cutoff)) {
    await rm(voice.absolutePath(f.path), { force: true });
    await voiceRetired(ledger.db, f.accountId, f.voiceId, `deleted after ${days} days (RETENTION_DAYS)`);
    files++;
  }
  const report = { webhookBodies: bodies, voiceFiles: files };
  if (report.webhookBodies || report.voiceFiles) log.info({ ...report, days }, 'retention: old webhook bodies and voice files deleted');
  return report;
}
