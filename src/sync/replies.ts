import { AVITO_MAX_TEXT, type AvitoClient } from '../avito/client.js';
import { messageFromAvito } from '../avito/mappers.js';
import type { AvitoMessage } from '../avito/schemas.js';
import type { ConversationRef, IncomingReply, PollStart, ReplyOutcome, SkippedItem } from '../connector-sdk/contract.js';
import { describeError, RemoteApiError } from '../errors.js';
import { chatsOfConversations, firstConversationAt, loadConversations } from '../ledger/conversations.js';
import { chatParties, knownChatIds } from '../ledger/chats.js';
import { getCursor } from '../ledger/cursors.js';
import type { LedgerDb } from '../ledger/database.js';
import { recordItemError } from '../ledger/item-errors.js';
import {
  actionSeen, advanceActionsCursor, dueReplies, linkedAvitoIds, markRepliesReported, planReplyParts, recordAction, replyParts, storeReplies, unreportedOutcomes,
  updateReply, updateReplyPart, type NewReply,
} from '../ledger/replies.js';
import type { ReplySendsTable } from '../ledger/tables.js';
import { backoffMs, type ConnectorWorkOptions } from './backoff.js';
import { classifyFailure } from './dispatcher.js';

/** Attempts before a reply is a dead letter (its failure is reported in the CRM). */
export const MAX_REPLY_ATTEMPTS = 5;
/** How far back in the chat a crashed send is looked for (Avito messages). */
const RECENT_MESSAGES = 50;
/** A crashed send is matched to a message this much older than the record of the send, at most (clock skew). */
const RECOVERY_WINDOW_S = 600;
/** A first look starts this long before the ledger's first conversation (our clock against the CRM's). */
export const FIRST_LOOK_MARGIN_S = 3600;

/** A reply as the core accepts it from a connector: anything else is recorded and skipped (invariant 8). */
function replyProblem(r: IncomingReply): string | undefined {
  if (typeof r !== 'object' || r === null) return 'not an object';
  if (typeof r.remoteId !== 'string' || r.remoteId === '' || r.remoteId.length > 200) return 'remoteId is not a short non-empty string';
  if (typeof r.conversationId !== 'string' && typeof r.chatId !== 'string') return 'neither conversationId nor chatId is a string';
  if (typeof r.text !== 'string') return 'text is not a string';
  if (!Array.isArray(r.attachments) || !r.attachments.every((a) => typeof a?.url === 'string' && typeof a.name === 'string' && typeof a.mime === 'string')) return 'attachments are not { url, name, mime }';
  return undefined;
}

/**
 * Splits a reply into Avito-sized parts (≤ 1,000 characters), at word boundaries where there
 * are any, keeping line breaks inside parts.
 */
export function splitText(text: string, max = AVITO_MAX_TEXT): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > max) {
    let cut = rest.lastIndexOf(' ', max);
    const nl = rest.lastIndexOf('\n', max);
    cut = Math.max(cut, nl);
    if (cut < max * 0.5) cut = max; // one very long word: cut it
    parts.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

export interface ReplyServiceOptions extends ConnectorWorkOptions {
  client: AvitoClient;
}

/** Reply retries: 10 s doubling to 10 min (a buyer is waiting). */
const REPLY_BACKOFF = { baseMs: 10_000, capMs: 600_000 };

export interface ReplyReport {
  found: number;
  sent: number;
  failed: number;
  dead: number;
  reported: number;
  actions: number;
}

interface Part {
  part: number;
  kind: 'text' | 'image';
  body: string;
  image_id: string | null;
  status: string;
  avito_message_id: string | null;
  updated_at: number;
}

/**
 * Replies from the CRM to Avito for one account and connector (design.md §5, invariant 3):
 * found by polling (cursor from the data) or by webhook hints; each stored once per CRM id;
 * sent at most once — every part is recorded as in progress before its call, and after a crash
 * the chat's latest messages are looked at before anything is sent again; the sent messages'
 * ids are linked so their echoes are not delivered back to the CRM; the fate is reported.
 */
export class ReplyService {
  private readonly now: () => number;

  constructor(private readonly o: ReplyServiceOptions) {
    this.now = o.now ?? Date.now;
  }

  private get cursorName(): string {
    return `replies:${this.o.connectorId}`;
  }

  /**
   * Where a first look starts (invariant 7): when this ledger linked its first conversation in the
   * CRM, less a margin — never "now". Undefined while there is no conversation: no reply can be ours.
   */
  async firstLook(): Promise<PollStart | undefined> {
    const first = await firstConversationAt(this.o.ledger.db, this.o.accountId, this.o.connectorId);
    return first === undefined ? undefined : { since: Math.max(0, Math.floor(first / 1000) - FIRST_LOOK_MARGIN_S) };
  }

  /**
   * Polls the CRM for new replies; stores them with the cursor in one transaction (invariant 5).
   * Without a cursor, the connector starts from the data (`firstLook`); what it could not read
   * is recorded and skipped, and the cursor moves past it (invariant 8).
   */
  async poll(): Promise<number> {
    if (!this.o.connector.pollReplies) return 0;
    const { ledger, accountId } = this.o;
    const cursor = await getCursor(ledger.db, accountId, this.cursorName);
    let start: PollStart | undefined;
    if (cursor === undefined) {
      start = await this.firstLook();
      if (!start) return 0;
    }
    const res = await this.o.connector.pollReplies(cursor, start);
    return this.intake(res.replies, res.cursor, res.skipped);
  }

  /** Stores replies (once per CRM id) for conversations that belong to Avito chats; returns how many were new. */
  async intake(replies: readonly IncomingReply[], cursor: string | undefined, skipped: readonly SkippedItem[] = []): Promise<number> {
    return (await this.store(replies, cursor, skipped)).added;
  }

  /**
   * Stores replies once per CRM id, with the cursor in the same transaction (invariant 5). A
   * reply names its conversation, or (`chatId`) the Avito chat itself; one whose chat this
   * ledger does not know, or that has nothing to send, is counted in `skipped` and not stored.
   * A reply of the wrong shape, and each item the connector skipped, is recorded with its reason
   * in the same transaction as the cursor (invariant 8).
   */
  async store(all: readonly IncomingReply[], cursor: string | undefined, skippedItems: readonly SkippedItem[] = []): Promise<{ added: number; skipped: number }> {
    const { ledger, accountId, connectorId } = this.o;
    const bad: SkippedItem[] = [...skippedItems];
    const replies = all.filter((r) => {
      const problem = replyProblem(r);
      if (problem) bad.push({ ref: `reply ${String((r as Partial<IncomingReply> | null)?.remoteId ?? '?').slice(0, 100)}`, reason: problem });
      return !problem;
    });
    const byConversation = await chatsOfConversations(ledger.db, accountId, connectorId, [...new Set(replies.filter((r) => !r.chatId).map((r) => r.conversationId))]);
    const named = [...new Set(replies.map((r) => r.chatId).filter((c): c is string => Boolean(c)))];
    const knownChats = await knownChatIds(ledger.db, accountId, named);
    const convOfChat = await loadConversations(ledger.db, accountId, connectorId, [...knownChats]);
    const now = this.now();
    let skipped = bad.length;
    const rows: NewReply[] = [];
    for (const r of replies) {
      const chatId = r.chatId ? (knownChats.has(r.chatId) ? r.chatId : undefined) : byConversation.get(r.conversationId);
      if (!chatId || !r.text.trim() && r.attachments.length === 0) {
        skipped++;
        continue;
      }
      const conversationId = r.chatId ? convOfChat.get(chatId)?.id ?? r.conversationId ?? chatId : r.conversationId;
      rows.push({ remoteId: r.remoteId, chatId, conversationId: conversationId || chatId, text: r.text, attachments: JSON.stringify(r.attachments) });
    }
    const added = await storeReplies(ledger, {
      accountId, connector: connectorId, replies: rows, now,
      itemErrors: bad.map((i) => ({ scope: 'replies.poll', ref: `${connectorId} ${i.ref}`, error: i.reason })),
      ...(cursor !== undefined ? { cursor: { name: this.cursorName, value: cursor } } : {}),
    });
    if (added) this.o.log.info({ account: accountId, connector: connectorId, replies: added }, 'replies found in the CRM');
    if (bad.length) this.o.log.warn({ account: accountId, connector: connectorId, skipped: bad.slice(0, 5) }, 'CRM items that could not be read were recorded and skipped');
    return { added, skipped };
  }

  /**
   * Sends every due reply, then reports outcomes. `interruptedOnly`: only replies a killed process
   * left in the middle of sending (their chats wait for them), without reporting.
   */
  async run(opts: { interruptedOnly?: boolean } = {}): Promise<ReplyReport> {
    const report: ReplyReport = { found: 0, sent: 0, failed: 0, dead: 0, reported: 0, actions: 0 };
    const due = await dueReplies(this.o.ledger.db, this.o.accountId, this.o.connectorId, opts.interruptedOnly ? ['sending'] : ['pending', 'sending'], this.now());
    for (const reply of due) {
      // One bad reply never stops the others (invariant 8): whatever it throws is its own failure.
      report[await this.sendOne(reply).catch((err: unknown) => this.failReply(reply, err))]++;
    }
    if (!opts.interruptedOnly) report.reported = await this.reportOutcomes();
    return report;
  }

  private async sendOne(reply: { id: number; chat_id: string; text: string; attachments: string; attempts: number }): Promise<'sent' | 'failed' | 'dead'> {
    const { ledger, client, accountId } = this.o;
    const attempts = reply.attempts + 1;
    await updateReply(ledger.db, reply.id, { status: 'sending', attempts, updated_at: this.now() });
    let recent: AvitoMessage[] | undefined;
    const used = new Set<string>();
    try {
      const parts = await this.plan(reply);
      const uid = await client.userId();
      for (const p of parts) {
        if (p.status === 'sent') {
          if (p.avito_message_id) used.add(p.avito_message_id);
          continue;
        }
        if (p.status === 'sending') {
          // An earlier attempt may have reached Avito: look before sending again (invariant 3).
          if (!recent) {
            recent = await client.listMessages(reply.chat_id, { limit: RECENT_MESSAGES });
            // Messages already linked to other replies are not this one.
            for (const id of await linkedAvitoIds(ledger.db, accountId, recent.map((m) => m.id))) used.add(id);
          }
          const found = recent.find((m) => !used.has(m.id) && m.author_id === uid && sameContent(p, m) && m.created >= Math.floor(p.updated_at / 1000) - RECOVERY_WINDOW_S);
          if (found) {
            await this.partSent(reply, p, found, uid);
            used.add(found.id);
            continue;
          }
        }
        await this.markPart(reply.id, p.part, { status: 'sending' });
        let sent: AvitoMessage;
        if (p.kind === 'text') sent = await client.sendText(reply.chat_id, p.body);
        else {
          let imageId = p.image_id;
          if (!imageId) {
            const att = JSON.parse(p.body) as { url: string; name: string; mime: string };
            const data = await download(att.url);
            const up = await client.uploadImage(data, att.name, att.mime);
            imageId = up.imageId;
            // Recorded before the send: a retry sends this image, it does not upload another.
            await this.markPart(reply.id, p.part, { image_id: imageId, body: JSON.stringify({ ...att, sizes: up.sizes }) });
            p.body = JSON.stringify({ ...att, sizes: up.sizes });
          }
          sent = await client.sendImage(reply.chat_id, imageId);
        }
        await this.partSent(reply, p, sent, uid);
        used.add(sent.id);
      }
      await updateReply(ledger.db, reply.id, { status: 'sent', last_error: null, updated_at: this.now() });
      return 'sent';
    } catch (err) {
      return this.failReply({ ...reply, attempts: reply.attempts }, err);
    }
  }

  /** A failed attempt: retried with backoff, or dead-lettered (reported in the CRM) when permanent or the last. */
  private async failReply(reply: { id: number; chat_id: string; attempts: number }, err: unknown): Promise<'failed' | 'dead'> {
    const { ledger, accountId } = this.o;
    const attempts = reply.attempts + 1;
    {
      const message = describeError(err);
      const outcome = classifyFailure(err);
      if (outcome === 'permanent' || attempts >= MAX_REPLY_ATTEMPTS) {
        await updateReply(ledger.db, reply.id, { status: 'dead', last_error: message, updated_at: this.now() });
        this.o.log.warn({ account: accountId, reply: reply.id, chat: reply.chat_id, err: message }, 'reply failed for good: dead letter, reported in the CRM');
        return 'dead';
      }
      const wait = backoffMs(attempts, this.o.backoff ?? REPLY_BACKOFF);
      await updateReply(ledger.db, reply.id, { status: 'pending', attempts, last_error: message, next_attempt_at: this.now() + wait, updated_at: this.now() });
      return 'failed';
    }
  }

  /** The parts of a reply, recorded on first sight: texts split to ≤ 1,000 characters, then images. */
  private async plan(reply: { id: number; text: string; attachments: string }): Promise<Part[]> {
    const { ledger, accountId } = this.o;
    const existing = await replyParts(ledger.db, reply.id);
    if (existing.length) return existing;
    const texts = splitText(reply.text);
    const images = JSON.parse(reply.attachments) as { url: string; name: string; mime: string }[];
    const rows: ReplySendsTable[] = [
      ...texts.map((body, i) => ({ reply_id: reply.id, part: i, account_id: accountId, kind: 'text' as const, body, image_id: null, status: 'planned' as const, avito_message_id: null, updated_at: this.now() })),
      ...images.map((a, i) => ({ reply_id: reply.id, part: texts.length + i, account_id: accountId, kind: 'image' as const, body: JSON.stringify(a), image_id: null, status: 'planned' as const, avito_message_id: null, updated_at: this.now() })),
    ];
    return planReplyParts(ledger.db, reply.id, rows);
  }

  private async markPart(replyId: number, part: number, set: Partial<Pick<ReplySendsTable, 'status' | 'image_id' | 'body'>>): Promise<void> {
    await updateReplyPart(this.o.ledger.db, replyId, part, { ...set, updated_at: this.now() });
  }

  /**
   * A part reached Avito: its message id is linked, and the message is stored in the ledger now
   * (as our own), so its echo by poll or webhook is known and never delivered to the CRM again.
   */
  private async partSent(reply: { id: number; chat_id: string }, p: Part, m: AvitoMessage, uid: string): Promise<void> {
    const { ledger, accountId } = this.o;
    const row = messageFromAvito(accountId, uid, reply.chat_id, { ...m, author_id: m.author_id ?? uid }, 'send');
    await ledger.ingest.replyPartSent(reply.id, p.part, row);
    p.status = 'sent';
    p.avito_message_id = m.id;
  }

  /** Writes the fate of finished replies back to the CRM, in one call per batch. */
  private async reportOutcomes(): Promise<number> {
    const { ledger, accountId, connectorId, connector } = this.o;
    if (!connector.reportReplies) return 0;
    const done = await unreportedOutcomes(ledger.db, accountId, connectorId);
    if (done.length === 0) return 0;
    const convs = await loadConversations(ledger.db, accountId, connectorId, [...new Set(done.map((d) => d.chat_id))]);
    const items = done.map((d) => {
      const conv: ConversationRef = convs.get(d.chat_id)?.id === d.conversation_id ? convs.get(d.chat_id)! : { id: d.conversation_id };
      const outcome: ReplyOutcome = d.status === 'sent' ? { sent: true, parts: d.parts } : { sent: false, reason: shortReason(d.last_error) };
      return { conversation: conv, remoteId: d.remote_id, outcome };
    });
    try {
      await connector.reportReplies(items);
    } catch (err) {
      if (classifyFailure(err) !== 'permanent') {
        this.o.log.warn({ account: accountId, connector: connectorId, err: describeError(err) }, 'could not report reply outcomes yet');
        return 0;
      }
      // One bad item must not keep the others unreported (invariant 8): report one by one; an
      // item refused for good is recorded and not tried again.
      let reported = 0;
      for (let i = 0; i < items.length; i++) {
        try {
          await connector.reportReplies([items[i]!]);
        } catch (one) {
          if (classifyFailure(one) !== 'permanent') return reported;
          await recordItemError(ledger.db, { accountId, scope: 'replies.report', ref: `${connectorId} reply ${done[i]!.remote_id}`, error: describeError(one) });
        }
        await markRepliesReported(ledger.db, [done[i]!.id]);
        reported++;
      }
      return reported;
    }
    await markRepliesReported(ledger.db, done.map((d) => d.id));
    return done.length;
  }

  /** Operator actions (a blacklist tag on a lead): carried out once each and reported. */
  async actions(): Promise<number> {
    const { ledger, accountId, connectorId, connector, client } = this.o;
    if (!connector.pollActions) return 0;
    const name = `actions:${connectorId}`;
    const cursor = await getCursor(ledger.db, accountId, name);
    let start: PollStart | undefined;
    if (cursor === undefined) {
      start = await this.firstLook(); // invariant 7: an action asked for before the first look counts too
      if (!start) return 0;
    }
    const res = await connector.pollActions(cursor, start);
    let done = 0;
    let retryLater = false;
    const bad: SkippedItem[] = [...(res.skipped ?? [])];
    const actions = res.actions.filter((a) => {
      const ok = typeof a?.conversationId === 'string' && a.action === 'blacklist';
      if (!ok) bad.push({ ref: `action ${String(a?.conversationId ?? '?').slice(0, 100)}`, reason: 'not a { conversationId, action: "blacklist" }' });
      return ok;
    });
    if (bad.length) await recordSkipped(ledger.db, accountId, 'actions.poll', connectorId, bad);
    const chats = await chatsOfConversations(ledger.db, accountId, connectorId, actions.map((a) => a.conversationId));
    for (const a of actions) {
      const chatId = chats.get(a.conversationId);
      if (!chatId) continue;
      if (await actionSeen(ledger.db, accountId, connectorId, a.conversationId, a.action)) continue;
      const chat = await chatParties(ledger.db, accountId, chatId);
      let outcome: { done: true } | { done: false; reason: string };
      try {
        if (!chat?.buyerId) throw new Error("the chat's buyer is not known yet");
        await client.blacklist(chat.buyerId, { ...(chat.itemId ? { itemId: chat.itemId } : {}) });
        outcome = { done: true };
      } catch (err) {
        if (err instanceof RemoteApiError && err.transient) {
          retryLater = true; // the cursor stays, so this lead is read again next time
          continue;
        }
        outcome = { done: false, reason: shortReason(describeError(err)) };
      }
      await recordAction(ledger.db, { account_id: accountId, connector: connectorId, conversation_id: a.conversationId, action: a.action, status: outcome.done ? 'done' : 'failed', error: outcome.done ? null : outcome.reason, updated_at: this.now() });
      done++;
      await connector.reportAction?.({ id: a.conversationId }, a.action, outcome).catch((err: unknown) => this.o.log.warn({ err: describeError(err) }, 'could not report the action'));
    }
    if (res.cursor !== undefined && !retryLater) {
      await advanceActionsCursor(ledger, accountId, name, res.cursor);
    }
    return done;
  }
}

/** Items a connector could not read, recorded with their reason (invariant 8). */
async function recordSkipped(db: LedgerDb, accountId: string, scope: string, connectorId: string, items: readonly SkippedItem[]): Promise<void> {
  for (const i of items) await recordItemError(db, { accountId, scope, ref: `${connectorId} ${i.ref}`, error: i.reason });
}

function sameContent(p: Part, m: AvitoMessage): boolean {
  if (p.kind === 'text') return m.type === 'text' && (m.content.text ?? '').trim() === p.body.trim();
  if (m.type !== 'image') return false;
  const sizes = (JSON.parse(p.body) as { sizes?: Record<string, string> }).sizes;
  if (!sizes) return false;
  const mine = new Set(Object.values(sizes));
  return Object.values(m.content.image?.sizes ?? {}).some((u) => mine.has(u));
}

/** The reason in one short line (the CRM note must not repeat the reply, nor be an essay). */
function shortReason(error: string | null): string {
  return (error ?? 'unknown error').split('. ')[0]!.slice(0, 300);
}

/** Fetches an attachment the CRM linked to (≤ 24 MB, Avito's image cap). */
async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  if (!res.ok) throw new RemoteApiError({ provider: 'attachment host', kind: res.status >= 500 ? 'server' : 'bad_request', status: res.status, remoteMessage: res.statusText, hint: 'The image attached to the reply could not be downloaded.', operation: `GET ${new URL(url).host}` });
  const buf = new Uint8Array(await res.arrayBuffer());
  if (buf.byteLength > 24 * 1024 * 1024) throw new RemoteApiError({ provider: 'Avito', kind: 'bad_request', status: 413, remoteMessage: `image is ${buf.byteLength} bytes`, hint: 'Avito takes images up to 24 MB.', operation: 'uploadImages' });
  return buf;
}
