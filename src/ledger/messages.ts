import type { LedgerDb } from './database.js';
import { chunks } from './chats.js';
import type { MessageRow, NewMessage } from './tables.js';

/**
 * Stores messages once per (account, message id) (invariant 1). Returns the rows that were new.
 * A known message that Avito now reports as `deleted` is updated in place, not duplicated.
 */
export async function insertMessages(trx: LedgerDb, rows: readonly NewMessage[]): Promise<{ inserted: string[]; deleted: string[] }> {
  const inserted: string[] = [];
  const deleted: string[] = [];
  for (const part of chunks(rows, 400)) {
    const res = await trx
      .insertInto('messages')
      .values(part)
      .onConflict((oc) => oc.columns(['account_id', 'message_id']).doNothing())
      .returning('message_id')
      .execute();
    const fresh = new Set(res.map((r) => r.message_id));
    inserted.push(...fresh);
    for (const row of part) {
      if (row.type !== 'deleted' || fresh.has(row.message_id)) continue;
      const upd = await trx
        .updateTable('messages')
        .set({ type: 'deleted', content: row.content, text: null })
        .where('account_id', '=', row.account_id)
        .where('message_id', '=', row.message_id)
        .where('type', '!=', 'deleted')
        .executeTakeFirst();
      if (Number(upd.numUpdatedRows) > 0) deleted.push(row.message_id);
    }
  }
  return { inserted, deleted };
}

/** Which of these message ids the ledger already has. */
export async function knownMessageIds(db: LedgerDb, accountId: string, ids: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const part of chunks(ids, 500)) {
    const rows = await db
      .selectFrom('messages')
      .select('message_id')
      .where('account_id', '=', accountId)
      .where('message_id', 'in', part)
      .execute();
    for (const r of rows) out.add(r.message_id);
  }
  return out;
}

export async function listChatMessages(db: LedgerDb, accountId: string, chatId: string, limit = 100): Promise<MessageRow[]> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('chat_id', '=', chatId)
    .orderBy('created', 'desc')
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute();
}

export async function countMessages(db: LedgerDb, accountId?: string): Promise<number> {
  let q = db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n'));
  if (accountId) q = q.where('account_id', '=', accountId);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}
