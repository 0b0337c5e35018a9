import type { LedgerDb } from './database.js';

/** One bad item is recorded here and the batch goes on. */
export async function recordItemError(
  db: LedgerDb,
  e: { accountId?: string | null; scope: string; ref?: string | null; error: string },
): Promise<void> {
  await db
    .insertInto('item_errors')
    .values({ account_id: e.accountId ?? null, scope: e.scope, ref: e.ref ?? null, error: e.error.slice(0, 2000), at: Date.now() })
    .execute();
}

export async function recentItemErrors(db: LedgerDb, limit = 10, accountId?: string) {
  let q = db.selectFrom('item_errors').selectAll();
  if (accountId) q = q.where('account_id', '=', accountId);
  return q.orderBy('id', 'desc').limit(limit).execute();
}
