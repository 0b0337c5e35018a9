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

/** Which of these chat ids the ledger knows for the account. */
export async function knownChatIds(db: LedgerDb, accountId: string, chatIds: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const part of chunks(chatIds, 500)) {
    for (const r of await db.selectFrom('chats').select('chat_id').where('account_id', '=', accountId).where('chat_id', 'in', part).execute()) out.add(r.chat_id);
  }
  return out;
}

/** How many chats of the account the ledger has. */
export async function countChats(db: LedgerDb, accountId: string): Promise<number> {
  const row = await db.selectFrom('chats').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A chat's buyer and item, as far as the ledger knows them. */
export async function chatParties(db: LedgerDb, accountId: string, chatId: string): Promise<{ buyerId: string | null; itemId: string | null } | undefined> {
  const row = await db.selectFrom('chats').select(['buyer_id', 'item_id']).where('account_id', '=', accountId).where('chat_id', '=', chatId).executeTakeFirst();
  return row ? { buyerId: row.buyer_id, itemId: row.item_id } : undefined;
}

/**
 * Chats known only from a webhook (details not fetched yet) whose first message arrived after
 * `since` (ms): their messages wait a little for the details.
 */
export async function youngStubChats(db: LedgerDb, accountId: string, since: number): Promise<Set<string>> {
  // The stubs first (the partial index chats_needing_fetch), then their messages through
  // messages_by_chat: a join let SQLite walk every message of the account instead (migration 006).
  const rows = await db
    .selectFrom('messages')
    .select('chat_id')
    .select((eb) => eb.fn.min('inserted_at').as('first'))
    .where('account_id', '=', accountId)
    .where('chat_id', 'in', (eb) => eb.selectFrom('chats').select('chat_id').where('account_id', '=', accountId).where('needs_fetch', '=', 1))
    .groupBy('chat_id')
    .execute();
  return new Set(rows.filter((r) => Number(r.first) > since).map((r) => r.chat_id));
}
