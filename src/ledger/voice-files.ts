import type { LedgerDb } from './database.js';

/** A voice file deleted by retention is never fetched again (its Avito link is long dead anyway). */
const RETIRED_ATTEMPTS = 1_000;

/** Voice ids of an account not kept yet and not given up on (fewer than `maxAttempts` failures). */
export async function pendingVoiceIds(db: LedgerDb, accountId: string, maxAttempts: number, limit = 500): Promise<string[]> {
  const rows = await db.selectFrom('voice_files').select('voice_id').where('account_id', '=', accountId).where('path', 'is', null).where('attempts', '<', maxAttempts).limit(limit).execute();
  return rows.map((r) => r.voice_id);
}

/** Voice files of an account not kept yet (for `status`). */
export async function countPendingVoice(db: LedgerDb, accountId: string): Promise<number> {
  const row = await db.selectFrom('voice_files').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).where('path', 'is', null).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The file was saved at `relPath` (relative to the data directory). */
export async function voiceKept(db: LedgerDb, accountId: string, voiceId: string, relPath: string, size: number): Promise<void> {
  await db.updateTable('voice_files').set({ path: relPath, size, fetched_at: Date.now(), error: null }).where('account_id', '=', accountId).where('voice_id', '=', voiceId).execute();
}

/** One more failed attempt for each, with why. */
export async function voiceFailed(db: LedgerDb, accountId: string, voiceIds: readonly string[], error: string): Promise<void> {
  if (voiceIds.length === 0) return;
  await db.updateTable('voice_files').set((eb) => ({ error, attempts: eb('attempts', '+', 1) })).where('account_id', '=', accountId).where('voice_id', 'in', voiceIds).execute();
}

/** Where a kept voice file is (relative to the data directory), if it is kept. */
export async function voiceFilePath(db: LedgerDb, accountId: string, voiceId: string): Promise<string | undefined> {
  const row = await db.selectFrom('voice_files').select('path').where('account_id', '=', accountId).where('voice_id', '=', voiceId).executeTakeFirst();
  return row?.path ?? undefined;
}

/** Kept voice files fetched before `cutoff` (ms), at most `limit`. */
export async function voiceFilesKeptBefore(db: LedgerDb, cutoff: number, limit = 10_000): Promise<{ accountId: string; voiceId: string; path: string }[]> {
  const rows = await db.selectFrom('voice_files').select(['account_id', 'voice_id', 'path']).where('path', 'is not', null).where('fetched_at', '<', cutoff).limit(limit).execute();
  return rows.map((r) => ({ accountId: r.account_id, voiceId: r.voice_id, path: r.path! }));
}

/** The file was deleted for good (retention): never fetched again; `why` is shown as its error. */
export async function voiceRetired(db: LedgerDb, accountId: string, voiceId: string, why: string): Promise<void> {
  await db.updateTable('voice_files').set({ path: null, error: why, attempts: RETIRED_ATTEMPTS }).where('account_id', '=', accountId).where('voice_id', '=', voiceId).execute();
}
