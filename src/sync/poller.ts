import type { Logger } from 'pino';
import { AVITO_MAX_OFFSET, AVITO_PAGE_LIMIT, type AvitoClient } from '../avito/client.js';
import { chatFromAvito, messageFromAvito } from '../avito/mappers.js';
import type { AvitoChat, AvitoMessage } from '../avito/schemas.js';
import { describeError, RemoteApiError } from '../errors.js';
import { chatsNeedingFetch, syncedMarks } from '../ledger/chats.js';
import { getCursor } from '../ledger/cursors.js';
import type { Ledger } from '../ledger/database.js';
import { recordItemError } from '../ledger/item-errors.js';
import type { NewChat } from '../ledger/tables.js';
import type { VoiceKeeper } from '../avito/voice-keeper.js';

export interface PollContext {
  ledger: Ledger;
  client: AvitoClient;
  log: Logger;
  voice: VoiceKeeper;
  /** Called after each transaction that stored new messages (the dispatcher listens). */
  onStored?: (accountId: string, newMessages: number) => void;
  /** Set when the daemon stops: the pass ends between chats, leaving the cursor where it was. */
  signal?: AbortSignal;
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
  /** Chats Avito refused for good this pass: recorded and skipped without holding the cursor. */
  skipped: number;
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
 * - for each chat whose `updated` moved, fetches message pages until one holds a known message,
 *   then writes the chat, its new messages and its sync mark in one transaction;
 * - the account cursor moves last, in one transaction with the last page's chat rows, and only
 *   when every chat of the pass is in (invariant 5).
 * Chats are fetched concurrently (the client's queue keeps the rate) and the next chat page is
 * asked for while the current page's messages come in.
 */
export async function pollAccount(ctx: PollContext, opts: PollOptions): Promise<PollReport> {
  const { ledger, client } = ctx;
  const db = ledger.db;
  const accountId = client.accountId;
  const log = ctx.log.child({ account: accountId });
  const uid = await client.userId();
  const cursorName = opts.cursorName ?? chatCursorName(opts.chatTypes, opts.itemIds);
  const stored = opts.full ? 0 : Number((await getCursor(db, accountId, cursorName)) ?? 0);
  const floor = Math.max(stored, opts.since ?? 0);
  const report: PollReport = { chatsSeen: 0, chatsFetched: 0, messagesNew: 0, messagesDeleted: 0, pages: 0, unreachable: [], errors: 0, skipped: 0, cursor: stored };

  await fetchStubChats(ctx, uid);

  let high = stored;
  let offset = 0;
  const listPage = (off: number) => client.listChats({ chatTypes: opts.chatTypes, itemIds: opts.itemIds, limit: AVITO_PAGE_LIMIT, offset: off });
  let pagePromise: Promise<AvitoChat[]> | undefined = listPage(0);
  let warnedOrder = false;
  const chatTasks: Promise<void>[] = [];
  let lastPageChats: NewChat[] = [];
  // Chats still fetching and chat pages still coming: while either holds, a finished chat's write
  // may wait to share a commit with the next ones (ChatWrite.more).
  const pass: PassState = { fetching: 0, paging: true };

  try {
    while (pagePromise) {
      if (ctx.signal?.aborted) {
        report.errors++;
        pagePromise.catch(() => undefined);
        break;
      }
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

      const rows = current.map((c) => chatFromAvito(accountId, uid, c));
      const marks = await syncedMarks(db, accountId, current.map((c) => c.id));
      const unchanged: NewChat[] = [];
      current.forEach((chat, i) => {
        if (marks.get(chat.id) === chat.updated) unchanged.push(rows[i]!);
        else chatTasks.push(syncChat(ctx, uid, chat, rows[i]!, !marks.has(chat.id), report, pass));
      });
      if (pagePromise) {
        await ledger.ingest.upsertChats(unchanged);
      } else {
        lastPageChats = unchanged;
      }
      offset = nextOffset;
    }
  } finally {
    pass.paging = false;
    // Never leave chat tasks running past the pass, even when a chat page failed.
    await Promise.allSettled(chatTasks);
  }
  const fatal = (await Promise.allSettled(chatTasks)).find((r) => r.status === 'rejected');
  if (fatal) throw (fatal as PromiseRejectedResult).reason;

  const moveCursor = report.errors === 0;
  await ledger.ingest.upsertChats(lastPageChats, moveCursor ? { accountId, name: cursorName, value: String(high) } : undefined);
  if (moveCursor) report.cursor = high;

  await ctx.voice.keepPending(client, ctx.signal);
  log.info({ ...report, unreachable: report.unreachable.length }, 'Avito pass done');
  return report;
}

interface PassState {
  /** Chat tasks that have not finished fetching. */
  fetching: number;
  /** More chat pages may add chat tasks. */
  paging: boolean;
}

/**
 * One changed chat: message pages, newest first, until a page holds a known message; then the
 * chat row, its new messages and its sync mark in one transaction. A chat that fails is recorded
 * and the pass goes on without it (its mark stays, so the next pass fetches it again).
 */
async function syncChat(ctx: PollContext, uid: string, chat: AvitoChat, row: NewChat, isNewChat: boolean, report: PollReport, pass: PassState): Promise<void> {
  const { ledger, client } = ctx;
  const accountId = client.accountId;
  const seen = new Map<string, AvitoMessage>();
  if (ctx.signal?.aborted) {
    report.errors++; // not fetched: the cursor must not pass it
    return;
  }
  pass.fetching++;
  try {
    for (let offset = 0; ; offset += AVITO_PAGE_LIMIT) {
      if (offset > AVITO_MAX_OFFSET) {
        report.unreachable.push(`messages past ${AVITO_MAX_OFFSET + AVITO_PAGE_LIMIT} in chat ${chat.id}`);
        break;
      }
      const page = await client.listMessages(chat.id, { limit: AVITO_PAGE_LIMIT, offset });
      // A chat the ledger has never seen has no known messages: no lookup needed.
      const known = isNewChat ? new Set<string>() : await ledger.ingest.knownMessageIds(accountId, chat.id, page.map((m) => m.id));
      for (const m of page) {
        if (!known.has(m.id) || m.type === 'deleted') seen.set(m.id, m);
      }
      if (page.length < AVITO_PAGE_LIMIT) break;
      if (known.size > 0 && isNewestFirst(page.map((m) => m.created))) break;
    }
  } catch (err) {
    if (ctx.signal?.aborted || client.stopped) {
      report.errors++; // stopping: the cursor waits, the next start fetches it
      return;
    }
    const msg = describeError(err);
    if (err instanceof RemoteApiError && (err.kind === 'tariff' || err.kind === 'bad_credentials')) {
      report.errors++;
      await recordItemError(ledger.db, { accountId, scope: 'poll.chat', ref: chat.id, error: msg });
      throw err;
    }
    // A failure that may pass (5xx, network, rate limit) holds the cursor so the next pass tries
    // again; one that will not (Avito refuses this chat, or answers it unreadably) is recorded and
    // skipped, and never holds the cursor for every other chat (invariant 8). The chat is fetched
    // again when it changes.
    const permanent = err instanceof RemoteApiError && !err.transient;
    if (permanent) report.skipped++;
    else report.errors++;
    ctx.log.child({ account: accountId, chat: chat.id }).warn({ err: msg, permanent }, permanent ? 'chat skipped: Avito refuses it' : 'chat skipped this pass');
    await recordItemError(ledger.db, { accountId, scope: 'poll.chat', ref: chat.id, error: msg });
    return;
  } finally {
    pass.fetching--;
  }
  const now = Date.now();
  const messages = [...seen.values()].map((m) => messageFromAvito(accountId, uid, chat.id, m, 'poll', now));
  // Row, new messages (with their deliveries) and sync mark in one transaction.
  const more = pass.fetching > 0 || pass.paging;
  const res = await ledger.ingest.writeChat(accountId, { chatId: chat.id, updated: chat.updated, row, messages, more });
  report.chatsFetched++;
  report.messagesNew += res.inserted.length;
  report.messagesDeleted += res.deleted.length;
  if (res.inserted.length > 0) ctx.onStored?.(accountId, res.inserted.length);
}

/** Chats known only from a webhook get their item and buyer (the daemon runs this soon after such a webhook). */
export async function fetchStubChats(ctx: PollContext, uid: string): Promise<void> {
  const { client, ledger } = ctx;
  const db = ledger.db;
  const ids = await chatsNeedingFetch(db, client.accountId);
  for (const chatId of ids) {
    if (ctx.signal?.aborted) return;
    try {
      const chat = await client.getChat(chatId);
      // The chat's messages are fetched by the pass itself: only its details are filled here.
      const row = chatFromAvito(client.accountId, uid, chat);
      await ledger.ingest.upsertChats([row]);
    } catch (err) {
      if (client.stopped) return;
      await recordItemError(db, { accountId: client.accountId, scope: 'poll.chat-details', ref: chatId, error: describeError(err) });
    }
  }
}
