import type { Selectable } from 'kysely';
import type { LedgerDb } from './database.js';
import type { AccountsTable } from './tables.js';

export type AccountRow = Selectable<AccountsTable>;

/** Makes sure the configured account has its row; keeps what the ledger already knows. */
export async function ensureAccount(db: LedgerDb, id: string, avitoUserId?: string): Promise<AccountRow> {
  const now = Date.now();
  await db
    .insertInto('accounts')
    .values({ id, avito_user_id: avitoUserId ?? null, name: null, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  if (avitoUserId) await setAvitoUserId(db, id, avitoUserId);
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

export async function setAvitoUserId(db: LedgerDb, id: string, avitoUserId: string, name?: string): Promise<void> {
  await db
    .updateTable('accounts')
    .set({ avito_user_id: avitoUserId, ...(name ? { name } : {}), updated_at: Date.now() })
    .where('id', '=', id)
    .execute();
}

export async function getAccount(db: LedgerDb, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listAccounts(db: LedgerDb): Promise<AccountRow[]> {
  return db.selectFrom('accounts').selectAll().orderBy('id').execute();
}
