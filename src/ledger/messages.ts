import type { LedgerDb } from './database.js';

/** Messages in the ledger (of one account, or all). Writes go through statements.ts. */
export async function countMessages(db: LedgerDb, accountId?: string): Promise<number> {
  let q = db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n'));
  if (accountId) q = q.where('account_id', '=', accountId);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}
