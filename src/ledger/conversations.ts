import type { LedgerDb } from './database.js';
import { chunks } from './chats.js';
import type { ChatRow } from './tables.js';

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

/**
 * Stores conversations and their links in one transaction. `awaitingDetails`: chats whose
 * conversation here was made before the chat's details arrived (migration 007); they are marked
 * for `dueDetailUpdates`. A conversation not in it keeps its mark as it was.
 */
export async function saveConversations(db: LedgerDb, accountId: string, connector: string, refs: ReadonlyMap<string, ConversationRef>, awaitingDetails: ReadonlySet<string> = new Set()): Promise<void> {
  if (refs.size === 0) return;
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    for (const [chatId, ref] of refs) {
      const json = JSON.stringify(ref);
      const mark = awaitingDetails.has(chatId) ? { details_pending: 1, details_attempts: 0, details_retry_at: null } : {};
      await trx
        .insertInto('conversations')
        .values({ account_id: accountId, connector, chat_id: chatId, ref: json, created_at: now, updated_at: now, ...mark })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'chat_id']).doUpdateSet({ ref: json, updated_at: now, ...mark }))
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

/** A conversation made before its chat's details arrived, whose chat has them now. */
export interface DetailUpdateDue {
  chatId: string;
  ref: ConversationRef;
  /** The ref's JSON as stored: the update is settled only if it is still this one. */
  storedRef: string;
  /** Failed attempts so far. */
  attempts: number;
  chat: ChatRow;
}

/**
 * Claims conversations marked `details_pending` (migration 007) whose chat's details are in the
 * ledger now (`needs_fetch = 0`) and whose retry time has come: at most `limit`, oldest first.
 * Claimed means their retry time is moved to `holdUntil` in one conditional UPDATE, so another
 * daemon on the same ledger skips them while this one calls the CRM (and a process that dies
 * mid-call leaves them to be tried again after `holdUntil`).
 */
export async function claimDetailUpdates(db: LedgerDb, accountId: string, connector: string, now: number, limit: number, holdUntil: number): Promise<DetailUpdateDue[]> {
  const due = await dueDetailUpdates(db, accountId, connector, now, limit);
  if (due.length === 0) return due;
  const claimed = await db
    .updateTable('conversations')
    .set({ details_retry_at: holdUntil })
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .where('chat_id', 'in', due.map((d) => d.chatId))
    .where('details_pending', '=', 1)
    .where((eb) => eb.or([eb('details_retry_at', 'is', null), eb('details_retry_at', '<=', now)]))
    .returning('chat_id')
    .execute();
  const mine = new Set(claimed.map((r) => r.chat_id));
  return due.filter((d) => mine.has(d.chatId));
}

async function dueDetailUpdates(db: LedgerDb, accountId: string, connector: string, now: number, limit: number): Promise<DetailUpdateDue[]> {
  const rows = await db
    .selectFrom('conversations as v')
    .innerJoin('chats as c', (j) => j.onRef('c.account_id', '=', 'v.account_id').onRef('c.chat_id', '=', 'v.chat_id'))
    .selectAll('c')
    .select(['v.ref as conversation_ref', 'v.details_attempts as conversation_attempts'])
    .where('v.account_id', '=', accountId)
    .where('v.connector', '=', connector)
    .where('v.details_pending', '=', 1)
    .where('c.needs_fetch', '=', 0)
    .where((eb) => eb.or([eb('v.details_retry_at', 'is', null), eb('v.details_retry_at', '<=', now)]))
    .orderBy('v.created_at')
    .limit(limit)
    .execute();
  return rows.map(({ conversation_ref, conversation_attempts, ...chat }) => ({
    chatId: chat.chat_id, ref: JSON.parse(conversation_ref) as ConversationRef, storedRef: conversation_ref, attempts: Number(conversation_attempts), chat,
  }));
}

/**
 * How a round of detail updates went, written in one transaction: `done` and `abandoned` lose
 * their mark (the abandoned are recorded with their reason, invariant 8), `retry` waits until its
 * time. Each is settled only while its conversation is still the one that was updated (a new
 * conversation made meanwhile keeps its own mark).
 */
export async function settleDetailUpdates(
  db: LedgerDb, accountId: string, connector: string,
  s: { done: readonly DetailUpdateDue[]; retry: readonly { due: DetailUpdateDue; at: number }[]; abandoned: readonly { due: DetailUpdateDue; error: string }[] },
): Promise<void> {
  if (s.done.length + s.retry.length + s.abandoned.length === 0) return;
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    const one = (d: DetailUpdateDue) => trx.updateTable('conversations').where('account_id', '=', accountId).where('connector', '=', connector).where('chat_id', '=', d.chatId).where('ref', '=', d.storedRef);
    for (const d of s.done) await one(d).set({ details_pending: 0, details_retry_at: null, updated_at: now }).execute();
    for (const r of s.retry) await one(r.due).set({ details_attempts: r.due.attempts + 1, details_retry_at: r.at }).execute();
    for (const a of s.abandoned) {
      await one(a.due).set({ details_pending: 0, details_attempts: a.due.attempts + 1, details_retry_at: null }).execute();
      await trx
        .insertInto('item_errors')
        .values({ account_id: accountId, scope: 'delivery.conversation-details', ref: `${connector} ${a.due.chatId}`, error: a.error.slice(0, 2000), at: now })
        .execute();
    }
  });
}

/**
 * Conversations an earlier version left to look at (`details_pending = 2`, migration 008): marked
 * to be named after their chat's details where the connector can (`canRename`, capability
 * `updateConversations`) — it renames only names still holding a placeholder, at most 100 a
 * dispatch run — and unmarked where it cannot. Returns how many were marked to be named.
 */
export async function settleConversationsToLookAt(db: LedgerDb, accountId: string, connector: string, canRename: boolean): Promise<number> {
  const res = await db.updateTable('conversations')
    .set(canRename ? { details_pending: 1, details_attempts: 0, details_retry_at: null } : { details_pending: 0 })
    .where('account_id', '=', accountId).where('connector', '=', connector).where('details_pending', '=', 2)
    .executeTakeFirst();
  return canRename ? Number(res.numUpdatedRows) : 0;
}

/** How many conversations of the account in this connector still wait to be named after their chat's details. */
export async function countDetailUpdatesPending(db: LedgerDb, accountId: string, connector: string): Promise<number> {
  const row = await db
    .selectFrom('conversations')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .where('details_pending', '=', 1)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
