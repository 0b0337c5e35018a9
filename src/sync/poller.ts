import type { Logger } from 'pino';
import { AVITO_MAX_OFFSET, AVITO_PAGE_LIMIT, type AvitoClient } from '../avito/client.js';
import { chatFromAvito, messageFromAvito } from '../avito/mappers.js';
import type { AvitoChat, AvitoMessage } from '../avito/schemas.js';
import { describeError, RemoteApiError } from '../errors.js';
import { chatsNeedingFetch, markChatSynced, syncedMarks, upsertChats } from '../ledger/chats.js';
import { getCursor, setCursor } from '../ledger/cursors.js';
import type { LedgerDb } from '../ledger/database.js';
import { recordItemError } from '../ledger/item-errors.js';
import { insertMessages, knownMessageIds } from '../ledger/messages.js';
import type { NewMessage } from '../ledger/tables.js';
import { registerVoice, type VoiceKeeper } from './voice-keeper.js';

export interface PollContext {
  db: LedgerDb;
  client: AvitoClient;
  log: Logger;
  voice: VoiceKeeper;
  /** Called after each transaction that stored new messages (the dispatcher listens). */
  onStored?: (accountId: string, newMessages: number) => void;
}

export interface PollOptions {
  chatTypes: readonly string[];
  /** Restricts the pass to these items (backfill partitions). */
  itemIds?: readonly string[];
  /** Cursor name; default derived from the chat types and items. */
  cursorName?: string;
  /** Ignore the stored cursor and walk everything reachable. */
  full?: boolean;
  /** Stop at chats updated before this (epoch seconds). */
  since?: number;
}

export interface PollReport {
  chatsSeen: number;
  chatsFetched: number;
  messagesNew: number;
  messagesDeleted: number;
  pages: number;
  /** What the paging caps kept out of reach. */
  unreachable: string[];
  errors: number;
  cursor: number;
}

export function chatCursorName(chatTypes: readonly string[], itemIds?: readonly string[]): string {
  const base = `chats:${[...chatTypes].sort().join(',')}`;
  return itemIds?.length ? `${base}:items:${[...itemIds].sort().join(',')}` : base;
}

function isNewestFirst(values: readonly number[]): boolean {
  for (let i = 1; i < values.length; i++) if (values[i]! > values[i - 1]!) return false;
  return true;
}

/**
 * One incremental pass over an account's chats (design.md §5, Avito side):
 * - chat pages with offset pagination under the caps (limit 100, offset ≤ 1000);
 * - stops at the first chat updated before the stored cursor (same-second chats are looked at
 *   again; ids dedupe them);
 * - for each chat whose `updated` moved, fetches message pages until one holds a known message;
 * - each chat page, its messages, the chats' sync marks and (on the last page) the cursor are
 *   written in one transaction (invariant 5).
 */
export async function pollAccount(ctx: PollContext, opts: PollOptions): Promise<PollReport> {
  const { db, client } = ctx;
  const accountId = client.accountId;
  const log = ctx.log.child({ account: accountId });
  const uid = await client.userId();
  const cursorName = opts.cursorName ?? chatCursorName(opts.chatTypes, opts.itemIds);
  const stored = opts.full ? 0 : Number((await getCursor(db, accountId, cursorName)) ?? 0);
  const floor = Math.max(stored, opts.since ?? 0);
  const report: PollReport = { chatsSeen: 0, chatsFetched: 0, messagesNew: 0, messagesDeleted: 0, pages: 0, unreachable: [], errors: 0, cursor: stored };

  await fetchStubChats(ctx, uid);

  let high = stored;
  let offset = 0;
  const listPage = (off: number) => client.listChats({ chatTypes: opts.chatTypes, itemIds: opts.itemIds, limit: AVITO_PAGE_LIMIT, offset: off });
  let pagePromise: Promise<AvitoChat[]> | undefined = listPage(0);
  let warnedOrder = false;

  while (pagePromise) {
    const page = await pagePromise;
    pagePromise = undefined;
    report.pages++;
    report.chatsSeen += page.length;

    const ordered = isNewestFirst(page.map((c) => c.updated));
    if (!ordered && !warnedOrder) {
      warnedOrder = true;
      log.warn('Avito returned chats not sorted by `updated` descending: walking every page instead of stopping at the cursor');
    }
    const current = page.filter((c) => c.updated >= floor);
    const reachedCursor = ordered && current.length < page.length;
    for (const c of current) high = Math.max(high, c.updated);

    const nextOffset = offset + AVITO_PAGE_LIMIT;
    const more = !reachedCursor && page.length === AVITO_PAGE_LIMIT;
    if (more && nextOffset > AVITO_MAX_OFFSET) {
      report.unreachable.push(`chats past ${AVITO_MAX_OFFSET + AVITO_PAGE_LIMIT} for ${cursorName} (Avito's paging cap)`);
    } else if (more) {
      // The next chat page is needed anyway: ask for it while this page's messages come in.
      pagePromise = listPage(nextOffset);
      pagePromise.catch(() => undefined);
    }

    const marks = await syncedMarks(db, accountId, current.map((c) => c.id));
    const changed = current.filter((c) => marks.get(c.id) !== c.updated);
    const fetched = await Promise.all(changed.map((chat) => fetchNewMessages(ctx, uid, chat, report)));
    const rows: NewMessage[] = [];
    const synced: AvitoChat[] = [];
    fetched.forEach((r, i) => {
      if (!r) return;
      rows.push(...r);
      synced.push(changed[i]!);
    });

    const last = pagePromise === undefined;
    const res = await db.transaction().execute(async (trx) => {
      await upsertChats(trx, current.map((c) => chatFromAvito(accountId, uid, c)));
      const stored = await insertMessages(trx, rows);
      const voiceIds = rows.filter((r) => r.voice_id && stored.inserted.includes(r.message_id)).map((r) => r.voice_id!);
      await registerVoice(trx, accountId, voiceIds);
      for (const chat of synced) await markChatSynced(trx, accountId, chat.id, chat.updated);
      // The cursor moves only when the whole pass is in, with the last page's rows.
      if (last && report.errors === 0) await setCursor(trx, accountId, cursorName, String(high));
      return stored;
    });
    report.chatsFetched += synced.length;
    report.messagesNew += res.inserted.length;
    report.messagesDeleted += res.deleted.length;
    if (res.inserted.length > 0) ctx.onStored?.(accountId, res.inserted.length);
    if (last && report.errors === 0) report.cursor = high;
    offset = nextOffset;
  }

  await ctx.voice.keepPending(client);
  log.info({ ...report, unreachable: report.unreachable.length }, 'Avito pass done');
  return report;
}

/**
 * Message pages of one chat, newest first, until a page holds a known message. Returns the new
 * rows, or undefined when the chat failed (recorded; the pass goes on without it).
 */
async function fetchNewMessages(ctx: PollContext, uid: string, chat: AvitoChat, report: PollReport): Promise<NewMessage[] | undefined> {
  const { db, client } = ctx;
  const accountId = client.accountId;
  const seen = new Map<string, AvitoMessage>();
  try {
    for (let offset = 0; ; offset += AVITO_PAGE_LIMIT) {
      if (offset > AVITO_MAX_OFFSET) {
        report.unreachable.push(`messages past ${AVITO_MAX_OFFSET + AVITO_PAGE_LIMIT} in chat ${chat.id}`);
        break;
      }
      const page = await client.listMessages(chat.id, { limit: AVITO_PAGE_LIMIT, offset });
      const known = await knownMessageIds(db, accountId, page.map((m) => m.id));
      for (const m of page) {
        if (!known.has(m.id) || m.type === 'deleted') seen.set(m.id, m);
      }
      if (page.length < AVITO_PAGE_LIMIT) break;
      if (known.size > 0 && isNewestFirst(page.map((m) => m.created))) break;
    }
  } catch (err) {
    report.errors++;
    const msg = describeError(err);
    ctx.log.warn({ account: accountId, chat: chat.id, err: msg }, 'chat skipped this pass');
    await recordItemError(db, { accountId, scope: 'poll.chat', ref: chat.id, error: msg });
    if (err instanceof RemoteApiError && (err.kind === 'tariff' || err.kind === 'bad_credentials')) throw err;
    return undefined;
  }
  return [...seen.values()].map((m) => messageFromAvito(accountId, uid, chat.id, m));
}

/** Chats known only from a webhook get their item and buyer. */
async function fetchStubChats(ctx: PollContext, uid: string): Promise<void> {
  const { db, client } = ctx;
  const ids = await chatsNeedingFetch(db, client.accountId);
  for (const chatId of ids) {
    try {
      const chat = await client.getChat(chatId);
      // The chat's messages are fetched by the pass itself: only its details are filled here.
      await upsertChats(db, [chatFromAvito(client.accountId, uid, chat)]);
    } catch (err) {
      await recordItemError(db, { accountId: client.accountId, scope: 'poll.chat-details', ref: chatId, error: describeError(err) });
    }
  }
}
