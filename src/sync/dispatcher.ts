import type {
  ChatInfo, ConversationRef, ConversationRequest, DeliveryItem, MessageAuthor, OutgoingMessage,
} from '../connector-sdk/contract.js';
import { isAvitoNotice } from '../avito/mappers.js';
import { describeError, RemoteApiError, ValidationError } from '../errors.js';
import { chatRows, chunks, youngStubChats } from '../ledger/chats.js';
import { connectorStore, INDEFINITE, pauseEnd, pausedState } from '../ledger/connector-state.js';
import { claimDetailUpdates, loadConversations, saveConversations, settleConversationsToLookAt, settleDetailUpdates, type DetailUpdateDue } from '../ledger/conversations.js';
import { messagesByIds } from '../ledger/messages.js';
import type { ClaimedDelivery, Outbox } from '../ledger/outbox.js';
import { chatsWithPartsInFlight, linkedAvitoIds } from '../ledger/replies.js';
import type { ChatRow, MessageRow } from '../ledger/tables.js';
import { backoffMs, type ConnectorWorkOptions } from './backoff.js';

/** Attempts before a delivery becomes a dead letter. */
export const MAX_ATTEMPTS = 8;

export interface DispatcherOptions extends ConnectorWorkOptions {
  /** A link to a kept voice file, when the daemon serves them (PUBLIC_URL). */
  voiceUrl?: (accountId: string, voiceId: string) => string | null;
  /** Chats whose buyer messages were delivered (the mark-read policy listens). */
  onDelivered?: (chatIds: string[]) => void;
  /** Deliveries claimed per round. Default 1,000. */
  claimLimit?: number;
  /**
   * A chat holding only Avito's own notices: `skip` opens no conversation for it (its notices are
   * skipped); `open` delivers them like any message. Default `skip`.
   */
  noticeChats?: 'skip' | 'open';
  /** A chat known only from a webhook waits this long for its details before delivery anyway. Default 5 min. */
  stubGraceMs?: number;
}

/** Conversations named after their chat's details per run; the rest wait for the next run. */
const DETAIL_UPDATES_PER_RUN = 100;

/**
 * How long a claimed conversation update is left to this process (others skip it): after a crash
 * mid-call, or a run stopped by a ban, it is tried again then.
 */
const DETAIL_UPDATE_HOLD_MS = 300_000;

/** Delivery retries: 10 s doubling to 1 h. */
const DELIVERY_BACKOFF = { baseMs: 10_000, capMs: 3_600_000 };

export interface DispatchReport {
  enqueued: number;
  delivered: number;
  reconciled: number;
  retried: number;
  dead: number;
  skipped: number;
  conversationsCreated: number;
  /** Conversations made before their chat's details arrived, named after them now. */
  conversationsUpdated: number;
  /** Why the run stopped early (paused connector, credentials refused), if it did. */
  halted?: string;
}

type Outcome = 'transient' | 'permanent' | 'halt';

/** How a failure is handled: retry later, give up on the item, or stop the connector's run. */
export function classifyFailure(err: unknown): Outcome {
  if (err instanceof RemoteApiError) {
    if (['banned', 'bad_credentials', 'token_expired', 'forbidden', 'tariff'].includes(err.kind)) return 'halt';
    if (err.transient) return 'transient';
    return 'permanent';
  }
  if (err instanceof ValidationError) return 'permanent';
  // A fault in our own code or data for this item (a date out of range, a bad URI, unreadable
  // JSON): the same item fails the same way every time, so it is not worth retrying (invariant 8).
  if (err instanceof RangeError || err instanceof TypeError || err instanceof SyntaxError || err instanceof URIError) return 'permanent';
  return 'transient';
}

interface Work {
  claim: ClaimedDelivery;
  message: MessageRow;
  chat: ChatRow | undefined;
  delivery?: DeliveryItem;
}

/**
 * Moves ledger messages into one connector for one account (design.md §7): enqueue new messages,
 * claim due deliveries keeping each chat's order, make sure each chat has its conversation,
 * reconcile items that may have been delivered before a crash (invariant 2), deliver in batches,
 * and retry with backoff or dead-letter what fails — one bad item never stops the rest.
 */
export class Dispatcher {
  private readonly outbox: Outbox;
  private readonly now: () => number;
  /** Conversations an earlier version left to look at (migration 008) have been settled for this connector. */
  private lookedAt = false;

  constructor(private readonly o: DispatcherOptions) {
    this.outbox = o.ledger.outbox(o.accountId, o.connectorId);
    this.now = o.now ?? Date.now;
  }

  get outboxCounts() {
    return this.outbox.counts();
  }

  async run(): Promise<DispatchReport> {
    const report: DispatchReport = { enqueued: 0, delivered: 0, reconciled: 0, retried: 0, dead: 0, skipped: 0, conversationsCreated: 0, conversationsUpdated: 0 };
    report.enqueued = await this.outbox.catchUp();
    const limit = this.o.claimLimit ?? 1000;
    for (;;) {
      const paused = await pausedState(this.o.ledger.db, this.o.accountId, this.o.connectorId, this.now());
      if (paused) {
        report.halted = `paused ${pauseEnd(paused.until) === INDEFINITE ? 'until resumed' : `until ${pauseEnd(paused.until)}`}: ${paused.reason}`;
        break;
      }
      const waiting = await this.chatsWaiting();
      let claimed = await this.outbox.claim(limit, this.now(), (chatId) => waiting.has(chatId));
      if (claimed.length === 0) break;
      const full = claimed.length >= limit;
      // Looked at again after the claim: a webhook for a new chat may have committed between the
      // look above and the claim (its chat stub, message and delivery in one transaction), and
      // its delivery was claimed though its chat's details are not there yet — its lead would be
      // named with a placeholder for good (seen under load on PostgreSQL). Anything the claim
      // saw is visible now, so this second look cannot miss it; those chats wait like the rest.
      const late = await this.chatsWaiting();
      const held = claimed.filter((c) => late.has(c.chatId));
      if (held.length) {
        await this.outbox.release(held.map((c) => c.id));
        claimed = claimed.filter((c) => !late.has(c.chatId));
      }
      const halted = claimed.length ? await this.round(claimed, report) : undefined;
      if (halted) {
        await this.halt(report, halted);
        break;
      }
      if (!full) break;
    }
    // After the messages: a conversation's name never holds up its notes.
    if (!report.halted) {
      const halted = await this.updateDetails(report);
      if (halted) await this.halt(report, halted);
    }
    if (report.delivered || report.dead || report.halted || report.conversationsUpdated) {
      this.o.log.info({ account: this.o.accountId, connector: this.o.connectorId, ...report }, 'dispatch done');
    }
    return report;
  }

  /** One claimed batch. Returns a reason when the connector's run must stop. */
  private async round(claimed: ClaimedDelivery[], report: DispatchReport): Promise<string | undefined> {
    const { ledger, accountId, connectorId } = this.o;
    const messages = await this.loadMessages(claimed.map((c) => c.messageId));
    const chatIds = [...new Set(claimed.map((c) => c.chatId))];
    const chats = await this.loadChats(chatIds);
    let work: Work[] = [];
    /** Deliveries with nothing to send: a reply's echo, or a notice in a chat without a lead. */
    const echoes: number[] = [];
    const linked = await this.echoLinked(claimed.filter((c) => messages.get(c.messageId)?.is_own).map((c) => c.messageId));
    for (const claim of claimed) {
      const message = messages.get(claim.messageId);
      if (!message || (claim.kind === 'message' && linked.has(claim.messageId))) {
        echoes.push(claim.id); // a reply's echo: already in the CRM as the reply itself
        continue;
      }
      work.push({ claim, message, chat: chats.get(claim.chatId) });
    }
    // Conversations: every chat needs one; a buyer writing into a closed one gets a new one.
    const previous = await loadConversations(ledger.db, accountId, connectorId, chatIds);
    if (this.o.noticeChats !== 'open') {
      // A chat that so far holds only Avito's own notices ("leave a review") opens no lead.
      for (const chatId of chatIds) {
        if (previous.has(chatId)) continue;
        const items = work.filter((w) => w.claim.chatId === chatId);
        if (items.length === 0 || !items.every((w) => isAvitoNotice(w.message))) continue;
        for (const w of items) echoes.push(w.claim.id);
        work = work.filter((w) => w.claim.chatId !== chatId);
      }
    }
    if (echoes.length) {
      await this.outbox.markSkipped(echoes);
      report.skipped += echoes.length;
    }

    const requests: ConversationRequest[] = [];
    for (const chatId of chatIds) {
      const items = work.filter((w) => w.claim.chatId === chatId);
      if (items.length === 0) continue;
      const buyerWrote = items.some((w) => !w.message.is_own && !w.message.bot_name && !isAvitoNotice(w.message) && w.claim.kind === 'message');
      const prev = previous.get(chatId);
      if (prev && !buyerWrote) continue;
      requests.push({ chat: chatInfo(accountId, chatId, items[0]!.chat), previous: prev, buyerWrote });
    }
    const conversations = new Map(previous);
    const fresh = new Set<string>();
    const failedChats = new Map<string, unknown>();
    // A conversation made while its chat is known only from a webhook carries placeholder names:
    // marked, so it is named after the details once they come (only where the connector can).
    const awaitingDetails = new Set<string>();
    for (const part of chunks(requests, this.o.capabilities.maxConversationBatch)) {
      let results;
      try {
        results = await this.o.connector.ensureConversations(part);
      } catch (err) {
        if (classifyFailure(err) === 'halt') {
          await this.outbox.release(work.map((w) => w.claim.id));
          return describeError(err);
        }
        results = part.map(() => ({ ok: false as const, error: err }));
      }
      const saved = new Map<string, ConversationRef>();
      results.forEach((r, i) => {
        const req = part[i]!;
        if (r.ok) {
          saved.set(req.chat.chatId, r.value);
          conversations.set(req.chat.chatId, r.value);
          if (r.value.id !== req.previous?.id) {
            fresh.add(req.chat.chatId);
            const row = chats.get(req.chat.chatId);
            if (this.canUpdateDetails && (!row || row.needs_fetch === 1)) awaitingDetails.add(req.chat.chatId);
          }
        } else failedChats.set(req.chat.chatId, r.error);
      });
      await saveConversations(ledger.db, accountId, connectorId, saved, awaitingDetails);
    }
    report.conversationsCreated += fresh.size;

    // Items whose chat has no conversation fail with the conversation's error.
    const ready: Work[] = [];
    const failures: { w: Work; error: unknown }[] = [];
    const firstSeen = new Set<string>();
    for (const w of work) {
      const conv = conversations.get(w.claim.chatId);
      if (!conv) {
        failures.push({ w, error: failedChats.get(w.claim.chatId) ?? new Error('no conversation for this chat') });
        continue;
      }
      const first = fresh.has(w.claim.chatId) && !firstSeen.has(w.claim.chatId);
      try {
        w.delivery = { conversation: conv, message: this.outgoing(w, first), chat: chatInfo(this.o.accountId, w.claim.chatId, w.chat) };
      } catch (err) {
        failures.push({ w, error: err }); // a row that cannot be read fails alone (invariant 8)
        continue;
      }
      firstSeen.add(w.claim.chatId);
      ready.push(w);
    }

    // Reconcile before re-sending: an earlier attempt may have reached the CRM (invariant 2).
    let toSend = ready;
    const maybeSent = ready.filter((w) => w.claim.priorAttempts > 0);
    if (maybeSent.length && this.o.capabilities.findDelivered) {
      const found = new Map<string, string>();
      try {
        for (const part of chunks(maybeSent, Math.max(this.o.capabilities.maxBatch, 50))) {
          for (const [k, v] of await this.o.connector.findDelivered(part.map((w) => w.delivery!))) found.set(k, v);
        }
      } catch (err) {
        // Unknown is not "absent": nothing is sent for these until the CRM can be asked again.
        const outcome = classifyFailure(err);
        await this.outbox.release(work.map((w) => w.claim.id), this.now() + this.backoffMs(1));
        return outcome === 'halt' ? describeError(err) : undefined;
      }
      const done = maybeSent.filter((w) => found.has(deliveryKey(w)));
      await this.outbox.markDelivered(done.map((w) => ({ id: w.claim.id, remoteId: found.get(deliveryKey(w))! })));
      report.reconciled += done.length;
      const doneIds = new Set(done.map((w) => w.claim.id));
      toSend = ready.filter((w) => !doneIds.has(w.claim.id));
    }

    const blocked = new Set<string>();
    for (const f of failures) {
      await this.fail(f.w, f.error, report);
      if (classifyFailure(f.error) !== 'permanent') blocked.add(f.w.claim.chatId);
    }
    const deliveredBuyerChats = new Set<string>();
    for (let i = 0; i < toSend.length; i += this.o.capabilities.maxBatch) {
      const batch = toSend.slice(i, i + this.o.capabilities.maxBatch);
      const halted = await this.deliverBatch(batch, blocked, report, deliveredBuyerChats);
      if (halted) {
        await this.outbox.release(toSend.slice(i + this.o.capabilities.maxBatch).map((w) => w.claim.id));
        return halted;
      }
    }
    if (deliveredBuyerChats.size) this.o.onDelivered?.([...deliveredBuyerChats]);
    return undefined;
  }

  private async deliverBatch(batch: Work[], blocked: Set<string>, report: DispatchReport, buyerChats: Set<string>): Promise<string | undefined> {
    const held = batch.filter((w) => blocked.has(w.claim.chatId));
    await this.outbox.release(held.map((w) => w.claim.id));
    const items = batch.filter((w) => !blocked.has(w.claim.chatId));
    if (items.length === 0) return undefined;
    let results;
    try {
      results = await this.o.connector.deliver(items.map((w) => w.delivery!));
    } catch (err) {
      const outcome = classifyFailure(err);
      if (outcome === 'halt') {
        await this.outbox.release(items.map((w) => w.claim.id));
        return describeError(err);
      }
      if (outcome === 'permanent' && items.length > 1) {
        // One bad item fails a whole batch: deliver one by one to find it; the rest go on.
        for (const w of items) {
          const halted = await this.deliverBatch([w], blocked, report, buyerChats);
          if (halted) return halted;
        }
        return undefined;
      }
      results = items.map(() => ({ ok: false as const, error: err }));
    }
    // Every item of this call was attempted: each keeps its attempt, whatever its chat's fate.
    const ok: { id: number; remoteId: string }[] = [];
    for (let k = 0; k < items.length; k++) {
      const w = items[k]!;
      const r = results[k] ?? { ok: false as const, error: new Error('the connector returned no result for this item') };
      if (r.ok) {
        ok.push({ id: w.claim.id, remoteId: r.value.remoteId });
        if (w.delivery!.message.author.kind === 'buyer') buyerChats.add(w.claim.chatId);
      } else {
        await this.fail(w, r.error, report);
        if (classifyFailure(r.error) !== 'permanent') blocked.add(w.claim.chatId);
      }
    }
    await this.outbox.markDelivered(ok);
    report.delivered += ok.length;
    return undefined;
  }

  /** The run stops: the reason goes in the report and stays in the ledger for `status`. */
  private async halt(report: DispatchReport, reason: string): Promise<void> {
    report.halted = reason;
    await connectorStore(this.o.ledger.db, this.o.accountId, this.o.connectorId).set('last_error', `${new Date(this.now()).toISOString()} ${reason}`);
  }

  /** The connector names conversations after their chat's details (capability `updateConversations`). */
  private get canUpdateDetails(): boolean {
    return this.o.capabilities.updateConversations === true && typeof this.o.connector.updateConversations === 'function';
  }

  /**
   * Conversations made before their chat's details arrived, whose chat has them now: the connector
   * names them after the buyer and the item. Each is settled in the ledger by its own result: done;
   * a transient failure tried again later with the delivery backoff; a permanent one (or the last
   * attempt) recorded with its reason and given up (invariant 8). Returns a reason when the
   * connector's run must stop (credentials refused, a ban).
   */
  private async updateDetails(report: DispatchReport): Promise<string | undefined> {
    const { ledger, accountId, connectorId } = this.o;
    if (!this.lookedAt) {
      const marked = await settleConversationsToLookAt(ledger.db, accountId, connectorId, this.canUpdateDetails);
      this.lookedAt = true;
      if (marked > 0) this.o.log.info({ account: accountId, connector: connectorId, conversations: marked }, 'conversations made by an earlier version are checked once for placeholder names');
    }
    if (!this.canUpdateDetails) return undefined;
    const due = await claimDetailUpdates(ledger.db, accountId, connectorId, this.now(), DETAIL_UPDATES_PER_RUN, this.now() + DETAIL_UPDATE_HOLD_MS);
    for (const part of chunks(due, Math.max(1, this.o.capabilities.maxConversationBatch))) {
      let results;
      try {
        results = await this.o.connector.updateConversations!(part.map((d) => ({ conversation: d.ref, chat: chatInfo(accountId, d.chatId, d.chat) })));
      } catch (err) {
        if (classifyFailure(err) === 'halt') return describeError(err);
        results = part.map(() => ({ ok: false as const, error: err }));
      }
      const done: DetailUpdateDue[] = [];
      const retry: { due: DetailUpdateDue; at: number }[] = [];
      const abandoned: { due: DetailUpdateDue; error: string }[] = [];
      part.forEach((d, i) => {
        const r = results[i] ?? { ok: false as const, error: new Error('the connector returned no result for this conversation') };
        if (r.ok) {
          done.push(d);
          return;
        }
        const error = describeError(r.error);
        const attempts = d.attempts + 1;
        if (classifyFailure(r.error) === 'permanent' || attempts >= MAX_ATTEMPTS) {
          abandoned.push({ due: d, error });
          this.o.log.warn({ account: accountId, connector: connectorId, chat: d.chatId, conversation: d.ref.id, attempts, err: error }, "could not name the conversation after its chat's details: given up");
        } else {
          retry.push({ due: d, at: this.now() + this.backoffMs(attempts) });
          this.o.log.info({ account: accountId, connector: connectorId, chat: d.chatId, conversation: d.ref.id, attempts, err: error }, "could not name the conversation after its chat's details: will try again");
        }
      });
      await settleDetailUpdates(ledger.db, accountId, connectorId, { done, retry, abandoned });
      report.conversationsUpdated += done.length;
    }
    return undefined;
  }

  private async fail(w: Work, error: unknown, report: DispatchReport): Promise<void> {
    const message = describeError(error);
    const attempts = w.claim.priorAttempts + 1;
    if (classifyFailure(error) === 'permanent' || attempts >= MAX_ATTEMPTS) {
      await this.outbox.markDead([{ id: w.claim.id, error: message }]);
      report.dead++;
      this.o.log.warn({ account: this.o.accountId, connector: this.o.connectorId, message: w.claim.messageId, chat: w.claim.chatId, attempts, err: message }, 'delivery failed for good: dead letter');
    } else {
      await this.outbox.retryLater([{ id: w.claim.id, error: message, at: this.now() + this.backoffMs(attempts) }]);
      report.retried++;
    }
  }

  private backoffMs(attempt: number): number {
    return backoffMs(attempt, this.o.backoff ?? DELIVERY_BACKOFF);
  }

  private outgoing(w: Work, first: boolean): OutgoingMessage {
    const m = w.message;
    let author: MessageAuthor;
    if (isAvitoNotice(m)) author = { kind: 'notice' };
    else if (m.bot_name) author = { kind: 'bot', name: m.bot_name, flowId: m.flow_id };
    else if (m.is_own) author = { kind: 'seller' };
    else author = { kind: 'buyer', name: w.chat?.buyer_name ?? null };
    const deletion = w.claim.kind === 'deletion';
    return {
      messageId: deletion ? `${m.message_id}:deleted` : m.message_id,
      chatId: m.chat_id,
      created: m.created,
      type: deletion ? 'deleted' : m.type,
      author,
      text: deletion ? null : m.text,
      content: JSON.parse(m.content) as Record<string, unknown>,
      voiceUrl: m.voice_id && this.o.voiceUrl ? this.o.voiceUrl(m.account_id, m.voice_id) : null,
      first,
    };
  }

  private loadMessages(ids: readonly string[]): Promise<Map<string, MessageRow>> {
    return messagesByIds(this.o.ledger.db, this.o.accountId, ids);
  }

  private loadChats(ids: readonly string[]): Promise<Map<string, ChatRow>> {
    return chatRows(this.o.ledger.db, this.o.accountId, ids);
  }

  /** Own messages that are echoes of replies this daemon sent (linked by Avito message id). */
  private echoLinked(messageIds: readonly string[]): Promise<Set<string>> {
    return linkedAvitoIds(this.o.ledger.db, this.o.accountId, messageIds);
  }

  /**
   * Chats whose messages wait this round: known only from a webhook and young enough to wait for
   * their details; or with a reply being sent right now (its echo may arrive before its id is
   * linked, and must not be delivered as a new message).
   */
  private async chatsWaiting(): Promise<Set<string>> {
    const out = await youngStubChats(this.o.ledger.db, this.o.accountId, this.now() - (this.o.stubGraceMs ?? 300_000));
    for (const chatId of await chatsWithPartsInFlight(this.o.ledger.db, this.o.accountId)) out.add(chatId);
    return out;
  }
}

function deliveryKey(w: Work): string {
  return w.delivery!.message.messageId;
}

/** The Avito web messenger's address of a chat. */
export function chatUrl(chatId: string): string {
  return `https://www.avito.ru/profile/messenger/channel/${encodeURIComponent(chatId)}`;
}

export function chatInfo(accountId: string, chatId: string, chat: ChatRow | undefined): ChatInfo {
  return {
    accountId,
    chatId,
    chatType: chat?.chat_type ?? null,
    item: { id: chat?.item_id ?? null, title: chat?.item_title ?? null, url: chat?.item_url ?? null, price: chat?.item_price ?? null },
    buyer: { id: chat?.buyer_id ?? null, name: chat?.buyer_name ?? null, url: chat?.buyer_url ?? null },
    chatUrl: chatUrl(chatId),
  };
}
