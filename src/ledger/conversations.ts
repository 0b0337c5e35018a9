import type { LedgerDb } from './database.js';
import { chunks } from './chats.js';

/**
 * A conversation reference as the ledger keeps it: opaque JSON whose `id` names the CRM object.
 * The same shape as the connector contract's ConversationRef, declared here so the ledger does
 * not depend on the connector SDK (data flows ledger → sync → SDK).
 */
export interface ConversationRef {
  id: string;
  [key: string]: unknown;
}

export async function loadConversations(db: LedgerDb, accountId: string, connector: string, chatIds: readonly string[]): Promise<Map<string, ConversationRef>> {
  const out = new Map<string, ConversationRef>();
  for (const part of chunks(chatIds, 500)) {
    const rows = await db
      .selectFrom('conversations')
      .select(['chat_id', 'ref'])
      .where('account_id', '=', accountId)
      .where('connector', '=', connector)
      .where('chat_id', 'in', part)
      .execute();
    for (const r of rows) out.set(r.chat_id, JSON.parse(r.ref) as ConversationRef);
  }
  return out;
}

export async function saveConversations(db: LedgerDb, accountId: string, connector: string, refs: ReadonlyMap<string, ConversationRef>): Promise<void> {
  if (refs.size === 0) return;
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    for (const [chatId, ref] of refs) {
      const json = JSON.stringify(ref);
      await trx
        .insertInto('conversations')
        .values({ account_id: accountId, connector, chat_id: chatId, ref: json, created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'chat_id']).doUpdateSet({ ref: json, updated_at: now }))
        .execute();
      await trx
        .insertInto('conversation_links')
        .values({ account_id: accountId, connector, conversation_id: ref.id, chat_id: chatId, created_at: now })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'conversation_id']).doNothing())
        .execute();
    }
  });
}

/** The chats these CRM conversations belong to (current or earlier ones). */
export async function chatsOfConversations(db: LedgerDb, accountId: string, connector: string, conversationIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const part of chunks(conversationIds, 500)) {
    const rows = await db
      .selectFrom('conversation_links')
      .select(['conversation_id', 'chat_id'])
      .where('account_id', '=', accountId)
      .where('connector', '=', connector)
      .where('conversation_id', 'in', part)
      .execute();
    for (const r of rows) out.set(r.conversation_id, r.chat_id);
  }
  return out;
}

/**
 * When this ledger first linked a conversation in this connector for the account (epoch ms), or
 * undefined when it has none: the earliest moment a reply on one of our conversations can exist
 * (invariant 7).
 */
export async function firstConversationAt(db: LedgerDb, accountId: string, connector: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('conversation_links')
    .select((eb) => eb.fn.min('created_at').as('first'))
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .executeTakeFirst();
  return row?.first == null ? undefined : Number(row.first);
}

/** Every conversation of an account in one connector's CRM (the connector kit's report). */
export async function listConversationRefs(db: LedgerDb, accountId: string, connector: string): Promise<ConversationRef[]> {
  const rows = await db.selectFrom('conversations').select('ref').where('account_id', '=', accountId).where('connector', '=', connector).orderBy('chat_id').execute();
  return rows.map((r) => JSON.parse(r.ref) as ConversationRef);
}
