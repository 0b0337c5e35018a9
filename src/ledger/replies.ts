import type { Selectable, Updateable } from 'kysely';
import { chunks } from './chats.js';
import { setCursor } from './cursors.js';
import type { Ledger, LedgerDb } from './database.js';
import { recordItemError } from './item-errors.js';
import type { CrmActionsTable, RepliesTable, ReplySendsTable } from './tables.js';

/**
 * Replies from a CRM to Avito and their parts (reply_sends), and operator actions: the
 * repository behind src/sync/replies.ts (design.md §5, invariant 3).
 */

export type ReplyRow = Selectable<RepliesTable>;
export type ReplyPartRow = Selectable<ReplySendsTable>;

/** A reply to store: which chat and conversation it answers, and what to send. */
export interface NewReply {
  remoteId: string;
  chatId: string;
  conversationId: string;
  text: string;
  /** JSON of the attachments ({ url, name, mime }[]). */
  attachments: string;
}

/**
 * Stores replies once per CRM id, the items that could not be read (as item errors), and the
 * poll cursor — all in one transaction (invariants 5 and 8). Returns how many were new.
 */
export async function storeReplies(
  ledger: Ledger,
  o: { accountId: string; connector: string; replies: readonly NewReply[]; cursor?: { name: string; value: string }; itemErrors: readonly { scope: string; ref: string; error: string }[]; now: number },
): Promise<number> {
  let added = 0;
  await ledger.transaction(async (trx) => {
    for (const e of o.itemErrors) await recordItemError(trx, { accountId: o.accountId, ...e });
    for (const r of o.replies) {
      const res = await trx
        .insertInto('replies')
        .values({
          account_id: o.accountId, connector: o.connector, remote_id: r.remoteId, chat_id: r.chatId, conversation_id: r.conversationId,
          text: r.text, attachments: r.attachments, status: 'pending', attempts: 0, next_attempt_at: o.now, last_error: null,
          reported: 0, created_at: o.now, updated_at: o.now,
        })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'remote_id']).doNothing())
        .executeTakeFirst();
      added += Number(res.numInsertedOrUpdatedRows ?? 0n);
    }
    if (o.cursor) await setCursor(trx, o.accountId, o.cursor.name, o.cursor.value);
  });
  return added;
}

/** Replies due to be sent (in these statuses, their retry time come), oldest first. */
export async function dueReplies(db: LedgerDb, accountId: string, connector: string, statuses: readonly RepliesTable['status'][], now: number, limit = 200): Promise<ReplyRow[]> {
  return db.selectFrom('replies').selectAll().where('account_id', '=', accountId).where('connector', '=', connector).where('status', 'in', statuses).where('next_attempt_at', '<=', now).orderBy('id').limit(limit).execute();
}

/** Moves one reply along (status, attempts, error, next attempt); `updated_at` is set by the caller. */
export async function updateReply(db: LedgerDb, id: number, set: Pick<Updateable<RepliesTable>, 'status' | 'attempts' | 'last_error' | 'next_attempt_at' | 'updated_at'>): Promise<void> {
  await db.updateTable('replies').set(set).where('id', '=', id).execute();
}

/** A reply's parts, in order. */
export async function replyParts(db: LedgerDb, replyId: number): Promise<ReplyPartRow[]> {
  return db.selectFrom('reply_sends').selectAll().where('reply_id', '=', replyId).orderBy('part').execute();
}

/** Records a reply's planned parts (once: parts already recorded stay as they are); returns them all. */
export async function planReplyParts(db: LedgerDb, replyId: number, parts: readonly ReplySendsTable[]): Promise<ReplyPartRow[]> {
  if (parts.length) await db.insertInto('reply_sends').values([...parts]).onConflict((oc) => oc.columns(['reply_id', 'part']).doNothing()).execute();
  return replyParts(db, replyId);
}

/** Records progress on one part (in progress, the uploaded image, its body). */
export async function updateReplyPart(db: LedgerDb, replyId: number, part: number, set: Pick<Updateable<ReplySendsTable>, 'status' | 'image_id' | 'body' | 'updated_at'>): Promise<void> {
  await db.updateTable('reply_sends').set(set).where('reply_id', '=', replyId).where('part', '=', part).execute();
}

/** Which of these Avito message ids are parts of replies this daemon sent (their echoes are ours). */
export async function linkedAvitoIds(db: LedgerDb, accountId: string, avitoMessageIds: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const part of chunks(avitoMessageIds, 500)) {
    const rows = await db.selectFrom('reply_sends').select('avito_message_id').where('account_id', '=', accountId).where('avito_message_id', 'in', part).execute();
    for (const r of rows) if (r.avito_message_id) out.add(r.avito_message_id);
  }
  return out;
}

/** Chats with a reply part being sent right now (their echo may come before the part's id is linked). */
export async function chatsWithPartsInFlight(db: LedgerDb, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('reply_sends')
    .innerJoin('replies', 'replies.id', 'reply_sends.reply_id')
    .select('replies.chat_id')
    .distinct()
    .where('reply_sends.account_id', '=', accountId)
    .where('reply_sends.status', '=', 'sending')
    .execute();
  return rows.map((r) => r.chat_id);
}

/** Finished replies (sent or dead) whose fate the CRM has not been told, with their part counts. */
export async function unreportedOutcomes(db: LedgerDb, accountId: string, connector: string, limit = 250): Promise<(Pick<ReplyRow, 'id' | 'remote_id' | 'chat_id' | 'conversation_id' | 'status' | 'last_error'> & { parts: number })[]> {
  const done = await db
    .selectFrom('replies')
    .select(['id', 'remote_id', 'chat_id', 'conversation_id', 'status', 'last_error'])
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .where('status', 'in', ['sent', 'dead'])
    .where('reported', '=', 0)
    .limit(limit)
    .execute();
  if (done.length === 0) return [];
  const counts = await db.selectFrom('reply_sends').select(['reply_id']).select((eb) => eb.fn.countAll<number>().as('n')).where('reply_id', 'in', done.map((d) => d.id)).groupBy('reply_id').execute();
  const parts = new Map(counts.map((c) => [Number(c.reply_id), Number(c.n)]));
  return done.map((d) => ({ ...d, parts: parts.get(Number(d.id)) ?? 1 }));
}

export async function markRepliesReported(db: LedgerDb, ids: readonly number[]): Promise<void> {
  for (const part of chunks(ids, 500)) await db.updateTable('replies').set({ reported: 1 }).where('id', 'in', part).execute();
}

/** Whether this operator action on this conversation was already carried out (or failed for good). */
export async function actionSeen(db: LedgerDb, accountId: string, connector: string, conversationId: string, action: string): Promise<boolean> {
  const row = await db.selectFrom('crm_actions').select('status').where('account_id', '=', accountId).where('connector', '=', connector).where('conversation_id', '=', conversationId).where('action', '=', action).executeTakeFirst();
  return row !== undefined;
}

export async function recordAction(db: LedgerDb, row: CrmActionsTable): Promise<void> {
  await db.insertInto('crm_actions').values(row).execute();
}

/**
 * Moves the actions cursor once every action it covers was recorded (each in `recordAction`,
 * before): a crash before this reads those actions again, and `actionSeen` skips them.
 */
export async function advanceActionsCursor(ledger: Ledger, accountId: string, name: string, value: string): Promise<void> {
  await ledger.transaction((trx) => setCursor(trx, accountId, name, value));
}
