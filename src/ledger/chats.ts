import type { LedgerDb } from './database.js';
import type { ChatRow } from './tables.js';

/** `chat_id → synced_updated` for the given chats. */
export async function syncedMarks(db: LedgerDb, accountId: string, chatIds: readonly string[]): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  for (const part of chunks(chatIds, 500)) {
    const rows = await db
      .selectFrom('chats')
      .select(['chat_id', 'synced_updated'])
      .where('account_id', '=', accountId)
      .where('chat_id', 'in', part)
      .execute();
    for (const r of rows) out.set(r.chat_id, r.synced_updated);
  }
  return out;
}

export async function chatsNeedingFetch(db: LedgerDb, accountId: string, limit = 100): Promise<string[]> {
  const rows = await db
    .selectFrom('chats')
    .select('chat_id')
    .where('account_id', '=', accountId)
    .where('needs_fetch', '=', 1)
    .limit(limit)
    .execute();
  return rows.map((r) => r.chat_id);
}

export async function listChats(db: LedgerDb, accountId: string, limit = 50): Promise<ChatRow[]> {
  return db
    .selectFrom('chats')
    .selectAll()
    .where('account_id', '=', accountId)
    .orderBy('updated', 'desc')
    .limit(limit)
    .execute();
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Chat rows of an account by id (those the ledger has). */
export async function chatRows(db: LedgerDb, accountId: string, chatIds: readonly string[]): Promise<Map<string, ChatRow>> {
  const out = new Map<string, ChatRow>();
  for (const part of chunks(chatIds, 500)) {
    for (const row of await db.selectFrom('chats').selectAll().where('account_id', '=', accountId).where('chat_id', 'in', part).execute()) out.set(row.chat_id, row);
  }
  return out;
}

/** The account's most recently updated chat, if the ledger has any (doctor reads it on Avito). */
export async function newestChatId(db: LedgerDb, accountId: string): Promise<string | undefined> {
  const row = await db.selectFrom('chats').select('chat_id').where('account_id', '=', accountId).orderBy('updated', 'desc').limit(1).executeTakeFirst();
  return row?.chat_id;
}
