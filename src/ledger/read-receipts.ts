import type { LedgerDb } from './database.js';

/** A sent reply the buyer may not have read yet, with the Avito ids of its parts. */
export interface ReplyAwaitingRead {
  replyId: number;
  chatId: string;
  avitoMessageIds: string[];
}

/** A read reply the connector has not been told about. */
export interface ReadToReport {
  replyId: number;
  chatId: string;
  conversationId: string;
  remoteId: string;
  readAt: number;
}

/**
 * Sent replies of one account and connector not yet seen read, sent since `sinceMs`, for at most
 * `chats` chats — those looked at longest ago first, so every chat gets its turn.
 */
export async function repliesAwaitingRead(db: LedgerDb, accountId: string, connector: string, sinceMs: number, chats: number): Promise<Map<string, ReplyAwaitingRead[]>> {
  const rows = await db
    .selectFrom('replies as r')
    .innerJoin('reply_sends as s', 's.reply_id', 'r.id')
    .select(['r.id', 'r.chat_id', 'r.read_checked_at', 's.avito_message_id'])
    .where('r.account_id', '=', accountId)
    .where('r.connector', '=', connector)
    .where('r.status', '=', 'sent')
    .where('r.read_at', 'is', null)
    .where('r.updated_at', '>=', sinceMs)
    .where('s.status', '=', 'sent')
    .where('s.avito_message_id', 'is not', null)
    .orderBy('r.id')
    .execute();
  const byChat = new Map<string, { checked: number; replies: Map<number, ReplyAwaitingRead> }>();
  for (const row of rows) {
    let chat = byChat.get(row.chat_id);
    if (!chat) byChat.set(row.chat_id, (chat = { checked: Infinity, replies: new Map() }));
    chat.checked = Math.min(chat.checked, Number(row.read_checked_at ?? 0));
    let reply = chat.replies.get(Number(row.id));
    if (!reply) chat.replies.set(Number(row.id), (reply = { replyId: Number(row.id), chatId: row.chat_id, avitoMessageIds: [] }));
    reply.avitoMessageIds.push(row.avito_message_id!);
  }
  const picked = [...byChat.entries()].sort((a, b) => a[1].checked - b[1].checked).slice(0, chats);
  return new Map(picked.map(([chatId, c]) => [chatId, [...c.replies.values()]]));
}

/** Records one look: the replies seen read get their time, every looked-at reply its check time. */
export async function recordReadCheck(db: LedgerDb, checked: readonly number[], read: ReadonlyMap<number, number>, now: number): Promise<void> {
  if (checked.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('replies').set({ read_checked_at: now }).where('id', 'in', checked).execute();
    for (const [id, at] of read) await trx.updateTable('replies').set({ read_at: at }).where('id', '=', id).where('read_at', 'is', null).execute();
  });
}

/** Read replies not yet reported to the connector, oldest first. */
export async function readsToReport(db: LedgerDb, accountId: string, connector: string, limit: number): Promise<ReadToReport[]> {
  const rows = await db
    .selectFrom('replies')
    .select(['id', 'chat_id', 'conversation_id', 'remote_id', 'read_at'])
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .where('read_at', 'is not', null)
    .where('read_reported', '=', 0)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ replyId: Number(r.id), chatId: r.chat_id, conversationId: r.conversation_id, remoteId: r.remote_id, readAt: Number(r.read_at) }));
}

export async function markReadsReported(db: LedgerDb, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('replies').set({ read_reported: 1 }).where('id', 'in', ids).execute();
}
