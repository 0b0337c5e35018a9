import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/database.js';
import type { VoiceKeeper } from '../avito/voice-keeper.js';

/** A voice file deleted by retention is never fetched again (its Avito link is long dead anyway). */
const RETIRED_ATTEMPTS = 1_000;

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
  const bodies = await ledger.db.updateTable('webhook_events').set({ body: '' }).where('received_at', '<', cutoff).where('body', '!=', '').executeTakeFirst();
  const old = await ledger.db.selectFrom('voice_files').select(['account_id', 'voice_id', 'path']).where('path', 'is not', null).where('fetched_at', '<', cutoff).limit(10_000).execute();
  let files = 0;
  for (const f of old) {
    await rm(voice.absolutePath(f.path!), { force: true });
    await ledger.db.updateTable('voice_files').set({ path: null, error: `deleted after ${days} days (RETENTION_DAYS)`, attempts: RETIRED_ATTEMPTS })
      .where('account_id', '=', f.account_id).where('voice_id', '=', f.voice_id).execute();
    files++;
  }
  const report = { webhookBodies: Number(bodies.numUpdatedRows ?? 0n), voiceFiles: files };
  if (report.webhookBodies || report.voiceFiles) log.info({ ...report, days }, 'retention: old webhook bodies and voice files deleted');
  return report;
}
