import type { LedgerDb } from './ledger.js';

/**
 * Cursors say how far a pass got. They are written only through a transaction handle that also
 * writes the rows they cover (invariant 5): pass the `trx` of that transaction.
 */
export async function getCursor(db: LedgerDb, accountId: string, name: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('cursors')
    .select('value')
    .where('account_id', '=', accountId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.value;
}

export async function setCursor(trx: LedgerDb, accountId: string, name: string, value: string): Promise<void> {
  const updated_at = Date.now();
  await trx
    .insertInto('cursors')
    .values({ account_id: accountId, name, value, updated_at })
    .onConflict((oc) => oc.columns(['account_id', 'name']).doUpdateSet({ value, updated_at }))
    .execute();
}

export async function listCursors(db: LedgerDb, accountId?: string) {
  let q = db.selectFrom('cursors').selectAll();
  if (accountId) q = q.where('account_id', '=', accountId);
  return q.orderBy('account_id').orderBy('name').execute();
}
