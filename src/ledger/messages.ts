import { chunks } from './chats.js';
import type { LedgerDb } from './database.js';
import type { MessageRow } from './tables.js';

/** Messages in the ledger (of one account, or all). Writes go through statements.ts. */
export async function countMessages(db: LedgerDb, accountId?: string): Promise<number> {
  let q = db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n'));
  if (accountId) q = q.where('account_id', '=', accountId);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** An account's messages created at or after `sinceSeconds` (Avito's unix seconds). */
export async function messagesSince(db: LedgerDb, accountId: string, sinceSeconds: number): Promise<MessageRow[]> {
  return db.selectFrom('messages').selectAll().where('account_id', '=', accountId).where('created', '>=', sinceSeconds).execute();
}

/** Messages of an account by Avito id (those the ledger has). */
export async function messagesByIds(db: LedgerDb, accountId: string, messageIds: readonly string[]): Promise<Map<string, MessageRow>> {
  const out = new Map<string, MessageRow>();
  for (const part of chunks(messageIds, 500)) {
    for (const r of await db.selectFrom('messages').selectAll().where('account_id', '=', accountId).where('message_id', 'in', part).execute()) out.set(r.message_id, r);
  }
  return out;
}
