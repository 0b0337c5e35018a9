import type { LedgerDb } from './database.js';
import type { ChatRow, NewChat } from './tables.js';

/** Inserts or refreshes chats from Avito; keeps `synced_updated` (what was already fetched). */
export async function upsertChats(trx: LedgerDb, rows: readonly NewChat[]): Promise<void> {
  for (const part of chunks(rows, 200)) {
    await trx
      .insertInto('chats')
      .values(part)
      .onConflict((oc) =>
        oc.columns(['account_id', 'chat_id']).doUpdateSet((eb) => ({
          chat_type: eb.fn.coalesce('excluded.chat_type', 'chats.chat_type'),
          item_id: eb.fn.coalesce('excluded.item_id', 'chats.item_id'),
          item_title: eb.fn.coalesce('excluded.item_title', 'chats.item_title'),
          item_url: eb.fn.coalesce('excluded.item_url', 'chats.item_url'),
          item_price: eb.fn.coalesce('excluded.item_price', 'chats.item_price'),
          buyer_id: eb.fn.coalesce('excluded.buyer_id', 'chats.buyer_id'),
          buyer_name: eb.fn.coalesce('excluded.buyer_name', 'chats.buyer_name'),
          buyer_url: eb.fn.coalesce('excluded.buyer_url', 'chats.buyer_url'),
          created: eb.fn.coalesce('excluded.created', 'chats.created'),
          updated: eb.fn.coalesce('excluded.updated', 'chats.updated'),
          needs_fetch: eb.ref('excluded.needs_fetch'),
          raw: eb.fn.coalesce('excluded.raw', 'chats.raw'),
          fetched_at: eb.fn.coalesce('excluded.fetched_at', 'chats.fetched_at'),
        })),
      )
      .execute();
  }
}

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
