import type { LedgerDb } from './database.js';

/**
 * Blanks the raw bodies of webhook events received before `cutoff` (ms); the rows stay, so their
 * ids still drop late duplicates. Returns how many bodies were blanked. (Events are written by the
 * ingest paths, sqlite-ingest.ts and postgres-ingest.ts.)
 */
export async function blankWebhookBodiesBefore(db: LedgerDb, cutoff: number): Promise<number> {
  const r = await db.updateTable('webhook_events').set({ body: '' }).where('received_at', '<', cutoff).where('body', '!=', '').executeTakeFirst();
  return Number(r.numUpdatedRows ?? 0n);
}
